;; cpstak.scm: Takeuchi's function in continuation-passing style, (cpstak
;; 18 12 6) computed 100 times, for Guile 3 and Chez Scheme: an internal
;; define whose recursion builds a fresh closure as the continuation of
;; each call and calls continuations in tail position. Prints 700.
(define (cpstak x y z)
  (define (tak x y z k)
    (if (not (< y x))
        (k z)
        (tak (- x 1) y z
             (lambda (v1)
               (tak (- y 1) z x
                    (lambda (v2)
                      (tak (- z 1) x y
                           (lambda (v3) (tak v1 v2 v3 k)))))))))
  (tak x y z (lambda (a) a)))

(define (repeat n acc)
  (if (= n 0)
      acc
      (repeat (- n 1) (+ acc (cpstak 18 12 6)))))

(display (repeat 100 0))
(newline)

