;; deriv.scm: symbolic differentiation of (+ (* 3 x x) (* a x x) (* b x) 5)
;; with respect to x, 200000 times, for Guile 3 and Chez Scheme. Prints the
;; number of atoms of the derivative summed over the runs, 8600000.
(define (deriv a)
  (cond ((not (pair? a)) (if (eq? a 'x) 1 0))
        ((eq? (car a) '+) (cons '+ (map deriv (cdr a))))
        ((eq? (car a) '-) (cons '- (map deriv (cdr a))))
        ((eq? (car a) '*)
         (list '* a (cons '+ (map (lambda (a) (list '/ (deriv a) a)) (cdr a)))))
        (else ; '/
         (list '-
               (list '/ (deriv (cadr a)) (caddr a))
               (list '/ (cadr a) (list '* (caddr a) (caddr a) (deriv (caddr a))))))))

(define (atoms t)
  (if (pair? t)
      (+ (atoms (car t)) (atoms (cdr t)))
      (if (null? t) 0 1)))

(define expr '(+ (* 3 x x) (* a x x) (* b x) 5))

(define (repeat n acc)
  (if (= n 0)
      acc
      (repeat (- n 1) (+ acc (atoms (deriv expr))))))

(display (repeat 200000 0))
(newline)
