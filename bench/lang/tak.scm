;; tak.scm: Takeuchi's function, (tak 18 12 6) computed 600 times, for
;; Guile 3 and Chez Scheme. Prints the sum of the results, 4200.
(define (tak x y z)
  (if (not (< y x))
      z
      (tak (tak (- x 1) y z)
           (tak (- y 1) z x)
           (tak (- z 1) x y))))

(define (repeat n acc)
  (if (= n 0)
      acc
      (repeat (- n 1) (+ acc (tak 18 12 6)))))

(display (repeat 600 0))
(newline)
