;; closure.ss: closure.scm for Chez Scheme: the same algorithm with R6RS
;; hashtables (Guile's hash tables have other names). Transitive closure of
;; a 300-node graph by naive Datalog saturation, computed 20 times from
;; scratch; a hash table per node as the set of reachable nodes (keys are
;; copied out before a table is extended). Prints 1800000.
(define n 300)

(define succ (make-vector n '()))
(do ((i 0 (+ i 1))) ((= i n))
  (vector-set! succ i (list (modulo (+ (* i 7) 1) n) (modulo (+ (* i 13) 5) n))))

(define (table-keys d)
  (vector->list (hashtable-keys d)))

;; Adds every successor of every node in d to d; returns #t if any was new.
(define (extend! d)
  (let loop ((ys (table-keys d)) (changed #f))
    (if (null? ys)
        changed
        (let inner ((zs (vector-ref succ (car ys))) (changed changed))
          (cond ((null? zs) (loop (cdr ys) changed))
                ((hashtable-ref d (car zs) #f) (inner (cdr zs) changed))
                (else (hashtable-set! d (car zs) #t)
                      (inner (cdr zs) #t)))))))

(define (round! reach)
  (let loop ((x 0) (changed #f))
    (if (= x n)
        changed
        (loop (+ x 1) (if (extend! (vector-ref reach x)) #t changed)))))

(define (closure)
  (let ((reach (make-vector n #f)))
    (do ((i 0 (+ i 1))) ((= i n))
      (let ((d (make-eqv-hashtable)))
        (for-each (lambda (s) (hashtable-set! d s #t)) (vector-ref succ i))
        (vector-set! reach i d)))
    (let saturate ()
      (when (round! reach) (saturate)))
    (let total ((x 0) (acc 0))
      (if (= x n)
          acc
          (total (+ x 1) (+ acc (hashtable-size (vector-ref reach x))))))))

(define (repeat k acc)
  (if (= k 0) acc (repeat (- k 1) (+ acc (closure)))))

(display (repeat 20 0))
(newline)
