;; ack.scm: Ackermann's function, (ack 3 9) computed 10 times, for Guile 3
;; and Chez Scheme. Prints the sum of the results, 40930.
(define (ack m n)
  (cond ((= m 0) (+ n 1))
        ((= n 0) (ack (- m 1) 1))
        (else (ack (- m 1) (ack m (- n 1))))))

(define (repeat k acc)
  (if (= k 0)
      acc
      (repeat (- k 1) (+ acc (ack 3 9)))))

(display (repeat 10 0))
(newline)
