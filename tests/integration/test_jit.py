"""The native tier through `sxpool eval --tier=jit`: tier-up at the
threshold (off the request path), the code cache shared between processes
and keyed by the ABI hash, jit-exclude!, deep recursion and native stack
exhaustion, the coverage report (--jit-report) that proves native code ran,
and the test-only fault injection switch (SXPOOL_INJECT)."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jit_report  # noqa: E402

SXPOOL = None


def run(args, src, env=None, timeout=120, report=False):
    """(status, stdout, stderr), and with report=True the coverage report
    (jit_report.Report, None if eval wrote none) as a fourth element."""
    with tempfile.TemporaryDirectory(prefix="sxpool-test-jit-") as d:
        path = os.path.join(d, "prog.sx")
        with open(path, "w") as f:
            f.write(src)
        rpath = os.path.join(d, "report")
        e = dict(os.environ)
        e.pop("SXPOOL_INJECT", None)
        e.update(env or {})
        extra = ["--jit-report=" + rpath] if report else []
        p = subprocess.run([SXPOOL, "eval"] + args + extra + [path], capture_output=True,
                           text=True, timeout=timeout, env=e)
        if report:
            return p.returncode, p.stdout, p.stderr, jit_report.read(rpath)
        return p.returncode, p.stdout, p.stderr


FIB = """
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(print (fib 20))
(define s (jit-stats))
(print "compiled " (get s :compiled) " cache-hits " (get s :cache-hits)
       " native " (> (get s :native-calls) 0))
"""


# (fib 20) makes 21891 calls of fib
FIB_CALLS = 21891


class Jit(unittest.TestCase):
    def assertReport(self, r, want, refused=()):
        """r has the counts in want and exactly the refusals (name, reason)."""
        self.assertIsNotNone(r, "no complete --jit-report")
        self.assertEqual({k: r.counts[k] for k in want}, want, r)
        self.assertEqual(sorted((x.name, x.reason) for x in r.refused), sorted(refused), r)

    def test_threshold_zero_compiles_before_the_first_call(self):
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], FIB, report=True)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "6765\ncompiled 1 cache-hits 0 native #t\n")
        # every call of fib ran native code: none was interpreted
        self.assertReport(r, {"functions-compiled": 1, "functions-refused": 0,
                              "functions-failed": 0, "calls-native": FIB_CALLS, "calls-vm": 0,
                              "toplevel-forms": 4})
        self.assertEqual([c.name for c in r.compiled], ["fib"], r)
        self.assertGreater(r.compiled[0].ms, 0, r)

    def test_report_counts_calls_on_every_tier_and_refusals(self):
        # the VM interprets every call; nothing compiles
        rc, out, err, r = run(["--tier=vm"], FIB, report=True)
        self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"), err)
        self.assertReport(r, {"functions-compiled": 0, "calls-native": 0,
                              "calls-vm": FIB_CALLS, "toplevel-forms": 4})
        # a refusal is listed with its reason; the report is written when
        # the program ends with an uncaught error too
        src = FIB.split("(define s")[0] + '(jit-exclude! "sq")\n(define (sq x) (* x x))\n' \
            "(print (sq 3))\n(car (sq 2))\n"
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], src, report=True)
        self.assertEqual((rc, out), (1, "6765\n9\n"), err)
        self.assertTrue(err.startswith("error: type-error: "), err)
        self.assertReport(r, {"functions-compiled": 1, "functions-refused": 1,
                              "calls-native": FIB_CALLS, "calls-vm": 2},
                          refused=[("sq", "excluded")])

    def test_hot_function_tiers_up_in_the_background(self):
        src = """
(define (sq x) (* x x))
(define start (current-time-ms))
(define (wait i)
  (cond ((> (get (jit-stats) :compiled) 0) 'compiled)
        ((> (- (current-time-ms) start) 60000) 'never)
        (else (sq i) (wait (+ i 1)))))
(print (wait 0))
(sq 3)
(print (> (get (jit-stats) :native-calls) 0))
"""
        # wait is a loop (self tail calls); both get hot after 10 calls. When
        # the first native code is installed, either it is wait's (entered
        # at once, or at wait's next call) or sq's (run by the (sq 3) after
        # the loop): either way a native call is made before the last line
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=10"], src, report=True)
        self.assertEqual((rc, out), (0, "compiled\n#t\n"), err)
        self.assertIsNotNone(r, "no complete --jit-report")
        self.assertGreaterEqual(r.counts["functions-compiled"], 1, r)
        self.assertGreater(r.counts["calls-native"], 0, r)
        self.assertEqual((r.counts["functions-refused"], r.counts["functions-failed"]), (0, 0), r)

    def test_benchmarks_compile_and_agree_with_the_vm(self):
        # every function of the language benchmarks lowers and compiles:
        # SXPOOL_JIT_STRICT turns a compile failure into exit status 3
        bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                             "lang")
        for name in ("fib", "tak", "queens", "closure"):
            path = os.path.join(bench, name + ".sx")
            with open(path) as f:
                src = f.read()
            want = run(["--tier=vm"], src)
            got = run(["--tier=jit", "--jit-threshold=0"], src, env={"SXPOOL_JIT_STRICT": "1"},
                      report=True)
            self.assertEqual(got[:2], want[:2], (name, got[2]))
            # and nothing was refused, and they ran native code
            r = got[3]
            self.assertIsNotNone(r, name)
            self.assertGreater(r.counts["functions-compiled"], 0, (name, r))
            self.assertEqual(r.refused, [], (name, r))
            self.assertGreaterEqual(r.native_share(), 0.95, (name, r))

    def test_inline_fast_paths_agree_with_cek(self):
        # the fixnum fast paths with constant operands (overflow at both ends
        # of the range, tested against the other operand only), predicates
        # that branch without making #t/#f, `(if (not (< ...)))`, and all of
        # them once the built-ins they assume are redefined
        src = """
(define big 2305843009213693951)
(define small -2305843009213693952)
(define (inc x) (+ x 1))
(define (dec x) (- x 1))
(define (sub-neg x) (- x -3))
(define (add-first x) (+ 5 x))
(define (sub-zero x) (- x 0))
(define (add2 a b) (+ a b))
(define (lt2 x) (if (< x 2) 'lt 'ge))
(define (nlt a b) (if (not (< a b)) 'ge 'lt))
(define (nn a) (if (not (null? a)) 'some 'none))
(define (nnot a) (if (not (not a)) 'yes 'no))
(define (eq0 x) (if (= x 0) 'zero (if (zero? x) 'z 'nz)))
(define (try f . args)
  (guard (e (#t (list (error-kind e) (error-message e)))) (apply f args)))
(print (inc 1) (dec 1) (sub-neg 1) (add-first 1) (sub-zero big) (add2 3 4))
(print (inc 1.5) (dec 0.5) (add-first 2.5) (add2 1 2.5) (add2 (- big 1) 1))
(print (try inc big) (try add-first big) (try dec small) (try sub-neg big)
       (try add2 big 1) (try add2 small -1) (sub-neg (- big 3)) (dec (+ small 1)))
(print (try inc "a") (try add2 1 'x))
(print (lt2 1) (lt2 2) (lt2 1.5) (lt2 -7) (try lt2 "s"))
(print (nlt 1 2) (nlt 2 1) (nlt 1.5 2) (nlt 3 2.5) (try nlt 1 'x))
(print (nn '()) (nn '(1)) (nnot #f) (nnot nil) (nnot 0) (eq0 0) (eq0 0.0) (eq0 3))
(define (loop i acc) (if (not (< i 10)) acc (loop (+ i 1) (+ acc i))))
(print (loop 0 0))
(set! not (lambda (x) x))
(print (nlt 1 2) (nlt 2 1) (nn '()) (nnot #f) (loop 0 0))
(set! < (lambda (a b) (> a b)))
(print (nlt 1 2) (nlt 2 1) (lt2 1) (lt2 5))
(set! + (lambda (a b) (* a b)))
(print (inc 7) (add-first 3) (add2 3 4))
"""
        want = run(["--tier=cek"], src)
        self.assertEqual(want[0], 0, want[2])
        self.assertEqual(want[1].splitlines()[:2], ["204623058430092136939517", "2.5-0.57.53.52305843009213693951"])
        got = run(["--tier=jit", "--jit-threshold=0"], src, env={"SXPOOL_JIT_STRICT": "1"},
                  report=True)
        self.assertEqual(got[:2], want[:2], got[2])
        r = got[3]
        self.assertIsNotNone(r)
        self.assertEqual(r.refused, [], r)
        self.assertEqual(r.counts["calls-vm"], 0, r)

    def test_division_fast_paths_agree_with_cek(self):
        # quotient, remainder and modulo on every sign, both ends of the
        # fixnum range (SX_FIX_MIN / -1 is out of range), both sides of
        # where native code divides in 32 bits (|x| < 2^29), a zero
        # divisor, floats and non-numbers, the divisor a variable and
        # constants
        src = """
(define big 2305843009213693951)
(define small -2305843009213693952)
(define (try f . args)
  (guard (e (#t (list (error-kind e) (error-message e)))) (apply f args)))
(define (q a b) (quotient a b))
(define (r a b) (remainder a b))
(define (m a b) (modulo a b))
(define (by-consts a)
  (list (quotient a 3) (remainder a -3) (modulo a -3) (modulo a 4) (quotient a -1)
        (modulo 7 a) (remainder -7 a)))
(define (q0 a) (quotient a 0))
(define (m0 a) (modulo a 0))
(define vals (list 0 1 -1 2 -2 3 -3 4 -4 7 -7 13 -13 big small (+ small 1) (- big 1)
                   536870911 536870912 -536870912 -536870913 2147483647 -2147483648
                   1.5 -2.0 4.0 "x" 'a))
(for-each (lambda (a)
            (for-each (lambda (b) (print a " " b " " (try q a b) (try r a b) (try m a b))) vals)
            (print a (try by-consts a) (try q0 a) (try m0 a)))
          vals)
(define (divloop i acc)
  (if (= i 0)
      acc
      (divloop (- i 1) (+ acc (quotient i 7) (remainder (- i) 5) (modulo (- i) 6)
                          (quotient (- i) i) (modulo i (- 0 (+ 1 (remainder i 3))))))))
(define before (get (jit-stats) :fallbacks))
(print (divloop 20000 0))
(define after (get (jit-stats) :fallbacks))
(print (try q 1 0) (try r 1 0) (try m 1 0))
(set! remainder (lambda (a b) (list a b)))
(print (r 7 2))
(jit-report-fallbacks (- after before) (- (get (jit-stats) :fallbacks) after))
"""
        # the last line is a global defined only for the native run: the
        # CEK run prints the same up to there and fails on it
        want = run(["--tier=cek"], src)
        self.assertEqual(want[0], 1, want[2])
        self.assertIn("unbound variable: jit-report-fallbacks", want[2])
        self.assertIn("quotient: integer result out of range", want[1])
        self.assertIn("(division-by-zero ", want[1])
        jsrc = "(define (jit-report-fallbacks a b) (print \"fallbacks \" a \" \" b))\n" + src
        got = run(["--tier=jit", "--jit-threshold=0"], jsrc, env={"SXPOOL_JIT_STRICT": "1"},
                  report=True)
        self.assertEqual(got[0], 0, got[2])
        lines = got[1].splitlines()
        self.assertEqual("\n".join(lines[:-1]) + "\n", want[1])
        # the loop's 100000 divisions of fixnums never left native code;
        # the zero divisors and the redefined remainder took the built-ins
        self.assertEqual(lines[-1], "fallbacks 0 4", got[1][-200:])
        r = got[3]
        self.assertEqual(r.refused, [], r)
        self.assertEqual(r.counts["calls-vm"], 0, r)

    def test_car_cdr_of_non_pairs_raise_as_on_cek(self):
        src = """
(define (try f . args)
  (guard (e (#t (list (error-kind e) (error-message e)))) (apply f args)))
(define (kar x) (car x))
(define (kdr x) (cdr x))
(define (kadr x) (car (cdr x)))
(define (np x) (list (null? x) (pair? x)))
(for-each (lambda (v) (print (try kar v) (try kdr v) (try kadr v) (np v)))
          (list '() 5 "s" 'sym 1.5 #f (list 1) (list 1 2) (cons 1 2) (vector 1 2)))
"""
        want = run(["--tier=cek"], src)
        self.assertEqual(want[0], 0, want[2])
        self.assertIn("(type-error car: expected (pair), got (nil))", want[1])
        got = run(["--tier=jit", "--jit-threshold=0"], src, env={"SXPOOL_JIT_STRICT": "1"},
                  report=True)
        self.assertEqual(got[:2], want[:2], got[2])
        self.assertEqual(got[3].counts["calls-vm"], 0, got[3])

    def test_inline_allocation_survives_collections(self):
        # cons, closures, the env of a self tail call (thunks: i is
        # captured) and a callee's frame env (adder) allocated inline while
        # collections run (a small memory limit keeps the heap small), the
        # data they build reachable only from native frames: a list held in
        # a loop's argument, a non-tail recursion holding its part on the C
        # stack. Every value is checked afterwards. The counters show the
        # inline paths ran: the runtime was asked for few of the objects,
        # and was asked (the free lists ran empty and were refilled).
        src = """
(define (junk k acc) (if (= k 0) (length acc) (junk (- k 1) (cons k acc))))
(define (build i acc)
  (if (= i 0) acc (build (- i 1) (cons i (cons (+ (junk 40 '()) i) acc)))))
(define (check l i n)
  (cond ((null? l) (= i (+ n 1)))
        ((and (= (car l) i) (= (car (cdr l)) (+ i 40))) (check (cdr (cdr l)) (+ i 1) n))
        (else (list 'bad i (car l)))))
(define (iota-r m n)
  (if (> m n) '() (cons (* m 3) (cons (junk 40 '()) (iota-r (+ m 1) n)))))
(define (check-r l m)
  (cond ((null? l) m)
        ((and (= (car l) (* m 3)) (= (car (cdr l)) 40)) (check-r (cdr (cdr l)) (+ m 1)))
        (else (list 'bad m))))
(define (thunks i acc)
  (if (= i 0) acc (thunks (- i 1) (cons (lambda () (* i 7)) (cons (junk 10 '()) acc)))))
(define (run-thunks l i)
  (cond ((null? l) i)
        ((= ((car l)) (* i 7)) (run-thunks (cdr (cdr l)) (+ i 1)))
        (else (list 'bad i))))
(define (adder n) (lambda (x) (+ x n (junk 5 '()))))
(define (adders i acc) (if (= i 0) acc (adders (- i 1) (cons (adder i) acc))))
(define (run-adders l i)
  (cond ((null? l) i)
        ((= ((car l) 100) (+ 105 i)) (run-adders (cdr l) (+ i 1)))
        (else (list 'bad i))))
(define n 60000)
(define s0 (jit-stats))
(print (check (build n '()) 1 n))
(print (check-r (iota-r 1 5000) 1))
(define s1 (jit-stats))
(print (run-thunks (thunks n '()) 1))
(print (run-adders (adders n '()) 1))
(define s2 (jit-stats))
(print "conses " (- (get s1 :fallbacks) (get s0 :fallbacks))
       " closures " (- (get s2 :runtime-allocs) (get s1 :runtime-allocs)))
"""
        want = ["#t", "5001", "60001", "60001"]
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0", "--memory-limit=24M"], src,
                              env={"SXPOOL_JIT_STRICT": "1", "GC_PRINT_STATS": "1"},
                              report=True)
        self.assertEqual(rc, 0, err[-2000:])
        lines = out.splitlines()
        self.assertEqual(lines[:4], want, out)
        self.assertEqual(r.counts["calls-vm"], 0, r)
        self.assertGreaterEqual(err.count("Marking for collection"), 5, err[-2000:])
        words = lines[4].split()
        conses, closures = int(words[1]), int(words[3])
        # build, iota-r and junk make about 2.8 million pairs; a free list
        # is refilled a block (256 pairs) at a time
        self.assertGreater(conses, 0, out)
        self.assertLess(conses, 2800000 // 50, out)
        # thunks and adders make 120000 closures and 120000 envs
        self.assertGreater(closures, 0, out)
        self.assertLess(closures, 240000 // 50, out)

    def test_vm_tier_never_compiles(self):
        rc, out, err = run(["--tier=vm"], FIB)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "6765\ncompiled 0 cache-hits 0 native #f\n")

    def test_code_cache_is_shared_and_keyed_by_abi(self):
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as cache:
            args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            rc, out, err = run(args, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)
            rc, out, err = run(args, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 1 native #t\n"), err)
            abis = os.listdir(cache)
            self.assertEqual(len(abis), 1, abis)
            # an entry filed under another ABI hash is never looked at
            os.rename(os.path.join(cache, abis[0]), os.path.join(cache, "0000000000000000"))
            rc, out, err = run(args, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)

    def test_warm_cache_installs_native_code_at_the_first_call(self):
        # a function the code cache holds runs native code from its first
        # call, whatever the threshold: with a threshold above the number
        # of calls the program makes, a cold run never compiles fib and a
        # warm one runs every call natively, loading instead of compiling
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as cache:
            fill = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            rc, out, err = run(fill, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)
            for threshold in (1000, 1000000):
                args = ["--tier=jit", "--jit-threshold=%d" % threshold, "--jit-cache=" + cache]
                rc, out, err, r = run(args, FIB, report=True)
                self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 1 native #t\n"), err)
                self.assertReport(r, {"functions-compiled": 1, "functions-cached": 1,
                                      "functions-failed": 0, "calls-native": FIB_CALLS,
                                      "calls-vm": 0})
                self.assertEqual(r.compiled, [], r)  # nothing compiled in this process
            # without the cache the same threshold leaves fib on the VM
            rc, out, err, r = run(["--tier=jit", "--jit-threshold=1000000"], FIB, report=True)
            self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"), err)
            self.assertReport(r, {"functions-compiled": 0, "calls-vm": FIB_CALLS})
            # an excluded function is not loaded at its first call either
            args = ["--tier=jit", "--jit-threshold=1000", "--jit-cache=" + cache,
                    "--jit-exclude=fib"]
            rc, out, err, r = run(args, FIB, report=True)
            self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"), err)
            self.assertReport(r, {"functions-cached": 0, "calls-vm": FIB_CALLS},
                              refused=[("fib", "excluded")])
            # the checks of the threshold path hold at the first call: a
            # shared object whose bytes no longer hash to its entry's is
            # not loaded; fib is compiled again at the threshold
            abi = os.path.join(cache, os.listdir(cache)[0])
            so = [n for n in os.listdir(abi) if n.endswith(".so")]
            self.assertEqual(len(so), 1, so)
            with open(os.path.join(abi, so[0]), "r+b") as f:
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
                f.seek(-1, os.SEEK_END)
                f.write(bytes([last[0] ^ 0xff]))
            args = ["--tier=jit", "--jit-threshold=1000000", "--jit-cache=" + cache]
            rc, out, err, r = run(args, FIB, report=True)
            self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"), err)
            self.assertIn("ignoring code cache entry", err)
            self.assertIn("SHA-256", err)
            self.assertReport(r, {"functions-cached": 0, "calls-vm": FIB_CALLS})

    def test_compile_cost_is_bounded(self):
        # a function with hundreds of calls is refused as too-large (it
        # stays on the VM and gives the right answer) instead of stalling
        # the program in libgccjit; one with dozens compiles, its calls past
        # the first few through the link table, well within seconds
        def prog(n):
            body = " ".join("(set! a (+ a (g %d)))" % i for i in range(n))
            return "(define (g x) (* x 2))\n(define (big a) %s a)\n(print (big 0))\n" % body
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], prog(400), report=True)
        self.assertEqual((rc, out), (0, "159600\n"), err)
        self.assertEqual([(name, why) for name, _, why in r.refused], [("big", "too-large")], r)
        start = time.monotonic()
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], prog(60), report=True)
        self.assertEqual((rc, out), (0, "3540\n"), err)
        self.assertEqual(r.refused, [], r)
        self.assertEqual(r.counts["functions-compiled"], 2, r)
        self.assertLess(time.monotonic() - start, 20)

    def test_a_build_with_another_value_layout_rejects_the_cache(self):
        # SXPOOL_TEST_ABI_TAGS (test binary only) stands for a build whose
        # tag and immediate constants differ: its ABI hash differs, so it
        # compiles afresh under a directory of its own and loads nothing
        # the first build compiled
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as cache:
            args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            rc, out, err = run(args, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)
            first = set(os.listdir(cache))
            changed = {"SXPOOL_TEST_ABI_TAGS": "mask 3 obj 0 fix 2 imm 1 pair 3 nil 6 f 2 t 10"}
            rc, out, err = run(args, FIB, env=changed)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)
            both = set(os.listdir(cache))
            self.assertEqual(len(first), 1, first)
            self.assertEqual(len(both), 2, both)
            # and the first build still finds its own entry
            rc, out, err = run(args, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 1 native #t\n"), err)

    def test_compile_error_keeps_the_function_on_the_vm_pool_wide(self):
        # a function libgccjit rejects stays on the VM, the error is logged
        # with its name, and the shared cache keeps other processes from
        # trying again
        inj = {"SXPOOL_INJECT": "compile-error:fib"}
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as cache:
            args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            stats = "(print (get (jit-stats) :compiled) \" \" (get (jit-stats) :failed))\n"
            src = FIB.split("(define s")[0] + stats
            rc, out, err = run(args, src, env=inj)
            self.assertEqual((rc, out), (0, "6765\n0 1\n"), err)
            self.assertIn("unable to compile fib", err)
            rc, out, err = run(args, src, env=inj)
            self.assertEqual((rc, out), (0, "6765\n0 1\n"), err)
            self.assertNotIn("unable to compile", err)

    def test_jit_exclude(self):
        src = '(jit-exclude! "fi*")\n' + FIB
        rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "6765\ncompiled 0 cache-hits 0 native #f\n")
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0", "--jit-exclude=f*,g*"], FIB,
                              report=True)
        self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"), err)
        self.assertReport(r, {"functions-compiled": 0, "calls-native": 0,
                              "calls-vm": FIB_CALLS}, refused=[("fib", "excluded")])

    def test_deep_recursion_and_native_stack_exhaustion(self):
        # a sanitizer build's C stack is smaller (vm/sx_api.c; tests/CMakeLists.txt
        # sets SXPOOL_SANITIZE there): native recursion goes 30,000 deep, not 100,000
        depth = 30000 if os.environ.get("SXPOOL_SANITIZE") else 100000
        src = """
(define (down n) (if (= n 0) 0 (+ 1 (down (- n 1)))))
(print (down DEPTH))
(define (loop n) (if (= n 0) 'done (loop (- n 1))))
(print (loop 5000000))
(define (ping n) (if (= n 0) 'ping (pong (- n 1))))
(define (pong n) (if (= n 0) 'pong (ping (- n 1))))
(print (ping 1000001))
(define (forever n) (+ 1 (forever n)))
(forever 0)
""".replace("DEPTH", str(depth))
        rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src)
        self.assertEqual(out, "%d\ndone\npong\n" % depth)
        self.assertEqual(rc, 1, err)
        self.assertTrue(err.startswith("error: stack-overflow: "), err)

    def test_direct_entries_agree_with_cek(self):
        # fixed-arity functions of 0 to 3 parameters get a direct entry (the
        # arguments as C parameters) and, when they can return before their
        # first call, a head that restarts in the body for anything else;
        # 4 parameters keep the generic entry only. Every path of it must
        # give CEK's results: early returns, restarts on a slow path
        # (overflow, a non-fixnum), an unbound global, let-bound locals,
        # the closure's env, redefinitions seen at the next call.
        src = """
(define (k0) 42)
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(define (add2 a b) (if (< a 1) b (add2 (- a 1) (+ b 1))))
(define (tak x y z)
  (if (not (< y x)) z (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y))))
(define (sum4 a b c d) (if (= a 0) (+ b c d) (sum4 (- a 1) b c d)))
(define (big n) (if (< n 1) n (+ n 2305843009213693951)))
(define (lets n) (let ((m (* n 2)) (k (+ n 1))) (if (< n 1) (list m k) (lets (- n 1)))))
(define (adder x) (lambda (y) (if (< y 1) x (+ x y))))
(define add5 (adder 5))
(define (count-down n) (if (= n 0) (k0) (count-down (- n 1))))
(print (k0) (fib 15) (add2 30 0) (tak 12 8 4) (sum4 3 1 2 3))
(print (big 0) (guard (e (#t (error-kind e))) (big 2)) (lets 3) (add5 0) (add5 2) (count-down 10))
(print (guard (e (#t (error-kind e))) (fib 2.5)) (guard (e (#t (error-kind e))) (fib "x")))
(define (uses-later n) (if (< n 1) later-defined n))
(print (guard (e (#t (error-kind e))) (uses-later 0)))
(define later-defined 'now)
(print (uses-later 0) (uses-later 3))
(define (self-redef n) (if (< n 1) 'old (self-redef (- n 1))))
(define saved self-redef)
(set! self-redef (lambda (n) 'new))
(print (saved 3) (saved 0))
(define (lt-user n) (if (< n 2) 'small (lt-user (- n 1))))
(print (lt-user 5))
(set! < (lambda (a b) #t))
(print (lt-user 5) (fib 3))
"""
        want = run(["--tier=cek"], src)
        self.assertEqual(want[0], 0, want[2])
        for t in ("0", "1", "10"):
            got = run(["--tier=jit", "--jit-threshold=" + t], src, env={"SXPOOL_JIT_STRICT": "1"})
            self.assertEqual(got, want, "threshold " + t)

    def test_direct_entries_are_generated_and_taken(self):
        # the code of a fixed-arity function exports its generic entry, its
        # direct entry (_d) and, with a head, its body (_b); every self call
        # of fib enters native code (calls-native counts them all)
        with tempfile.TemporaryDirectory(prefix="sxpool-test-jit-direct-") as cache:
            rc, out, err, r = run(["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache],
                                  FIB, report=True)
            self.assertEqual(rc, 0, err)
            self.assertReport(r, {"functions-compiled": 1, "calls-native": FIB_CALLS,
                                  "calls-vm": 0})
            h = r.compiled[0].hash
            sos = [os.path.join(dp, f) for dp, _, fs in os.walk(cache) for f in fs
                   if f.endswith(".so")]
            self.assertEqual(len(sos), 1, sos)
            with open(sos[0], "rb") as f:
                data = f.read()
            for suffix in (b"", b"_d", b"_b"):
                self.assertIn(b"\0sx_" + h.encode() + suffix + b"\0", data, suffix)
            # a warm cache serves the same entries
            rc, out2, err, r = run(["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache],
                                   FIB, report=True)
            self.assertEqual((rc, out2.split("\n")[0]), (0, "6765"), err)
            self.assertReport(r, {"functions-cached": 1, "calls-native": FIB_CALLS})

    def test_direct_calls_keep_tail_calls_and_stack_errors(self):
        # mutual tail recursion of 10^6 steps between functions with direct
        # entries runs in constant C stack; a closure called in tail position
        # (continuation-passing) too; deep non-tail recursion through the
        # direct self call ends in CEK's error, not a crash
        src = """
(define (ev? n) (if (= n 0) #t (od? (- n 1))))
(define (od? n) (if (= n 0) #f (ev? (- n 1))))
(print (ev? 1000000) (od? 1000001))
(define (cps n k) (if (= n 0) (k 'done) (cps (- n 1) (lambda (v) (k v)))))
(print (cps 100000 (lambda (v) v)))
(define (fd n p g) (if (< n 1) (g p) (fd (- n 1) (fd (- n 1) p g) g)))
(print (fd 6 2 (lambda (x) (min x x))) (fd 6 2 (lambda (x) (+ x 1))))
(define (deep n) (if (= n -1) 0 (+ 1 (deep (+ n 1)))))
(deep 0)
"""
        want = run(["--tier=cek"], src, timeout=300)
        self.assertEqual(want[0], 1, want[2])
        self.assertTrue(want[2].startswith("error: stack-overflow: "), want[2])
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], src, report=True, timeout=300)
        self.assertEqual((rc, out), (want[0], want[1]), err)
        self.assertTrue(err.startswith("error: stack-overflow: "), err)
        self.assertGreater(r.counts["calls-native"], 2000000, r)

    def test_fault_injection(self):
        src = """
(define (edges-block xs) (map (lambda (x) (* x 2)) xs))
(print (edges-block '(1 2 3)))
"""
        inj = {"SXPOOL_INJECT": "wrong-prim-arg:edges-block"}
        rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src, env=inj)
        self.assertEqual(rc, 1)
        self.assertIn("error: type-error: map: expected (fn list", err)
        for tier in ("vm", "cek"):
            rc, out, err = run(["--tier=" + tier], src, env=inj)
            self.assertEqual((rc, out), (0, "(2 4 6)\n"), err)
        rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src,
                           env={"SXPOOL_INJECT": "null-deref:edges-block"})
        # SIGSEGV; a sanitizer build's own handler turns it into SIGABRT
        self.assertIn(rc, (-11, -6), err)
        rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src,
                           env={"SXPOOL_INJECT": "ice:edges-block"})
        self.assertEqual(rc, 4, err)
        rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src,
                           env={"SXPOOL_INJECT": "ice:some-other-function"})
        self.assertEqual((rc, out), (0, "(2 4 6)\n"), err)


if __name__ == "__main__":
    SXPOOL = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
