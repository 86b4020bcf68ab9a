;; primes.scm: the primes up to 1000 by a sieve over lists, 1000 times,
;; for Guile 3 and Chez Scheme: the list 2..1000 is built, then each head's
;; multiples are removed from what follows it, non-tail recursively. Prints
;; the number of primes found summed over the runs, 168000.
(define (interval-list m n)
  (if (> m n)
      '()
      (cons m (interval-list (+ 1 m) n))))

(define (remove-multiples n l)
  (cond ((null? l) '())
        ((= (remainder (car l) n) 0) (remove-multiples n (cdr l)))
        (else (cons (car l) (remove-multiples n (cdr l))))))

(define (sieve l)
  (if (null? l)
      '()
      (cons (car l) (sieve (remove-multiples (car l) (cdr l))))))

(define (primes<= n) (sieve (interval-list 2 n)))

(define (repeat k acc)
  (if (= k 0)
      acc
      (repeat (- k 1) (+ acc (length (primes<= 1000))))))

(display (repeat 1000 0))
(newline)
