;; fib.scm: doubly recursive Fibonacci, fib(30), for Guile 3 and Chez
;; Scheme. Prints 832040.
(define (fib n)
  (if (< n 2)
      n
      (+ (fib (- n 1)) (fib (- n 2)))))

(display (fib 30))
(newline)
