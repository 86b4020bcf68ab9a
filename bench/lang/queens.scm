;; queens.scm: counts the 92 solutions of 8-queens, 700 times, for Guile 3
;; and Chez Scheme. The queens placed so far are a list of columns,
;; nearest row first, as in the SX version. Prints 64400.
(define (safe? col dist placed)
  (cond ((null? placed) #t)
        ((let ((q (car placed)))
           (or (= q col) (= q (+ col dist)) (= q (- col dist))))
         #f)
        (else (safe? col (+ dist 1) (cdr placed)))))

(define (count-from row placed size)
  (if (= row size)
      1
      (let loop ((col 0) (acc 0))
        (if (= col size)
            acc
            (loop (+ col 1)
                  (if (safe? col 1 placed)
                      (+ acc (count-from (+ row 1) (cons col placed) size))
                      acc))))))

(define (repeat n acc)
  (if (= n 0)
      acc
      (repeat (- n 1) (+ acc (count-from 0 '() 8)))))

(display (repeat 700 0))
(newline)
