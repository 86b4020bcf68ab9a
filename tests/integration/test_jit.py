"""The native tier through `sxpool eval --tier=jit`: tier-up at the
threshold (off the request path), the code cache shared between processes
and keyed by the ABI hash, jit-exclude!, deep recursion and native stack
exhaustion, the coverage report (--jit-report) that proves native code ran,
and the test-only fault injection switch (SXPOOL_INJECT)."""

import os
import shutil
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

    def assertAgreesAtThresholds(self, src):
        """src succeeds on CEK and gives the same status, output and errors
        on the jit tier at thresholds 0, 1 and 10 (SXPOOL_JIT_STRICT),
        with no failed compile; returns CEK's (status, stdout, stderr)."""
        want = run(["--tier=cek"], src)
        self.assertEqual(want[0], 0, want[2])
        for t in ("0", "1", "10"):
            got = run(["--tier=jit", "--jit-threshold=" + t], src, env={"SXPOOL_JIT_STRICT": "1"},
                      report=True)
            self.assertEqual(got[:3], want, "threshold " + t)
            self.assertEqual(got[3].counts["functions-failed"], 0, got[3])
        return want

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

    def test_assembler_and_linker_run_directly_and_leave_no_files(self):
        # libgccjit writes assembly; the compile thread runs `as` and `ld`
        # itself and removes the .s and .o: the cache holds only .so and
        # .idx files, and TMPDIR (where libgccjit works, and where a batch
        # goes without a cache) is left empty
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as top:
            cache, tmp = os.path.join(top, "cache"), os.path.join(top, "tmp")
            os.mkdir(cache, 0o700)
            os.mkdir(tmp, 0o700)
            env = {"TMPDIR": tmp, "SXPOOL_JIT_VERBOSE": "1"}
            for extra in (["--jit-cache=" + cache], []):
                rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"] + extra, FIB, env=env,
                                      report=True)
                self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"),
                                 err)
                self.assertReport(r, {"functions-compiled": 1, "calls-vm": 0})
                self.assertRegex(err, r"batch of 1 \(1 lowered\) in [0-9.]+ ms: .*"
                                      r"assembling and linking [0-9.]+")
                self.assertRegex(err, r"installed fib [0-9a-f]{16} [0-9.]+ ms after it got hot")
                self.assertEqual(os.listdir(tmp), [])
            abi = os.path.join(cache, os.listdir(cache)[0])
            self.assertEqual(sorted(os.path.splitext(n)[1] for n in os.listdir(abi)),
                             [".idx", ".so"], os.listdir(abi))

    def test_assembler_that_fails_or_is_not_needed_leaves_no_file(self):
        # `as` reads the assembly from a pipe, started before the compile
        # where a CPU is free for it and after it otherwise (both orders,
        # SXPOOL_TEST_AS_EARLY; sxpool-test only): one that exits without
        # reading it (the write then fails with EPIPE; eval does not ignore
        # SIGPIPE, which must not end it) is reported by its status, and the
        # cache records no failure; a missing one is reported as before;
        # when the compile fails, an `as` started early gets no input, is
        # reaped and its empty object removed. TMPDIR is left empty.
        stats = "(print (get (jit-stats) :compiled) \" \" (get (jit-stats) :failed))\n"
        src = FIB.split("(define s")[0] + stats
        for early in ("0", "1"):
            with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as top:
                cache, tmp, bin_, empty = (os.path.join(top, n)
                                           for n in ("cache", "tmp", "bin", "empty"))
                for d in (cache, tmp, bin_, empty):
                    os.mkdir(d, 0o700)
                fake = os.path.join(bin_, "as")
                with open(fake, "w") as f:
                    f.write("#!/bin/sh\nexit 1\n")
                os.chmod(fake, 0o700)
                args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
                env = {"TMPDIR": tmp, "SXPOOL_TEST_AS_EARLY": early}
                path = bin_ + os.pathsep + os.environ.get("PATH", "")
                rc, out, err = run(args, FIB, env=dict(env, PATH=path))
                self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"),
                                 (early, err))
                self.assertRegex(err, r"unable to compile fib \([0-9a-f]{16}\): "
                                      r"as failed \(status 1\)")
                self.assertEqual(os.listdir(tmp), [], early)
                rc, out, err = run(args, FIB, env=dict(env, PATH=empty))
                self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"),
                                 (early, err))
                self.assertRegex(err, r"unable to compile fib \([0-9a-f]{16}\): cannot run as")
                self.assertEqual(os.listdir(tmp), [], early)
                rc, out, err = run(args, FIB, env=env)
                self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"),
                                 (early, err))
                rc, out, err = run(["--tier=jit", "--jit-threshold=0"], src,
                                   env=dict(env, SXPOOL_INJECT="compile-error:fib"))
                self.assertEqual((rc, out), (0, "6765\n0 1\n"), (early, err))
                self.assertIn("unable to compile fib", err)
                self.assertEqual(os.listdir(tmp), [], early)

    def test_missing_assembler_keeps_functions_on_the_vm_for_this_process_only(self):
        # without `as` on PATH nothing compiles: the program still runs on
        # the VM and says why, and the cache records no failure (a missing
        # tool says nothing about the function), so a process that has the
        # tools compiles it
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as top:
            cache, empty = os.path.join(top, "cache"), os.path.join(top, "bin")
            os.mkdir(cache, 0o700)
            os.mkdir(empty)
            args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            rc, out, err, r = run(args, FIB, env={"PATH": empty}, report=True)
            self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"), err)
            self.assertRegex(err, r"unable to compile fib \([0-9a-f]{16}\): cannot run as")
            self.assertReport(r, {"functions-compiled": 0, "functions-failed": 1,
                                  "calls-vm": FIB_CALLS})
            rc, out, err = run(args, FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)

    def test_without_libgccjit_everything_runs_on_the_vm(self):
        # libgccjit is loaded when the native tier starts, not linked into
        # the binary: a process that cannot load it says why, once, and runs
        # every function on the VM, with or without a code cache, at the
        # threshold and before the first call; the cache records no failure
        # (SXPOOL_TEST_GCCJIT names the library; sxpool-test only)
        gone = {"SXPOOL_TEST_GCCJIT": "/nonexistent/libgccjit.so.0"}
        with tempfile.TemporaryDirectory(prefix="sxpool-jitcache-") as top:
            cache = os.path.join(top, "cache")
            os.mkdir(cache, 0o700)
            for args in (["--jit-threshold=0"], ["--jit-threshold=10"],
                         ["--jit-threshold=0", "--jit-cache=" + cache]):
                rc, out, err, r = run(["--tier=jit"] + args, FIB, env=gone, report=True)
                self.assertEqual((rc, out), (0, "6765\ncompiled 0 cache-hits 0 native #f\n"),
                                 (args, err))
                # the compile thread loads the library while the program
                # runs: at threshold 10 the program may end before it says so
                said = err.count("native tier unavailable: unable to load "
                                 "/nonexistent/libgccjit.so.0")
                self.assertIn(said, (0, 1) if "--jit-threshold=10" in args else (1,), (args, err))
                self.assertNotIn("unable to compile", err)
                self.assertEqual(r.counts["calls-vm"], FIB_CALLS, r)
                self.assertEqual(r.counts["calls-native"], 0, r)
            # a function the JIT should compile but cannot is fatal in strict mode
            rc, out, err = run(["--tier=jit", "--jit-threshold=0"], FIB,
                               env=dict(gone, SXPOOL_JIT_STRICT="1"))
            self.assertEqual(rc, 3, err)
            # with the library, the same cache gives native code
            rc, out, err = run(["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache], FIB)
            self.assertEqual((rc, out), (0, "6765\ncompiled 1 cache-hits 0 native #t\n"), err)

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

    def test_calls_to_other_functions_take_their_direct_entry(self):
        # a call of another function that has a direct entry (a fixed
        # parameter list of up to 3, no heap env) enters it with the
        # arguments in registers: calls-direct counts exactly those calls,
        # in tail position (ev?/od?) or not (sq), of a global or of a
        # closure held in a local (k, with the env of make-adder)
        src = """
(define (sq x) (* x x))
(define (sum-sq n acc) (if (= n 0) acc (sum-sq (- n 1) (+ acc (sq n)))))
(print (sum-sq 1000 0))
(define (ev? n) (if (= n 0) #t (od? (- n 1))))
(define (od? n) (if (= n 0) #f (ev? (- n 1))))
(print (ev? 1000))
(define (make-adder a) (lambda (x) (+ x a)))
(define (use-k k n acc) (if (= n 0) acc (use-k k (- n 1) (+ acc (k n)))))
(print (use-k (make-adder 3) 100 0))
"""
        want = run(["--tier=cek"], src)
        self.assertEqual(want, (0, "333833500\n#t\n5350\n", ""))
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], src, report=True)
        self.assertEqual((rc, out, err), want)
        # sq 1000, ev?/od? 1000 tail calls, the adder's closure 100; from
        # the VM: sum-sq, ev?, make-adder, use-k. A callee's first call
        # comes before it has code (threshold 0 compiles at the first
        # call) and takes the generic path: at most one per callee
        self.assertReport(r, {"calls-native": 2104, "calls-vm": 0})
        self.assertGreaterEqual(r.counts["calls-direct"], 2100 - 4, r)
        self.assertLessEqual(r.counts["calls-direct"], 2100, r)

    def test_direct_calls_to_other_functions_agree_with_cek(self):
        # what the generic path does, the direct entry of another function
        # does too: a redefined callee is seen at the next call, a callee
        # whose native code is dropped while its caller runs natively runs
        # on the VM from then on, an arity mismatch or a non-procedure
        # raises CEK's error, so does a callee's error (caught by the
        # caller's guard, or escaping), closures with envs of their own
        # (counter) or their closure's (the adder) are called right
        src = """
(define (g x) (+ x 1))
(define (f x) (* 2 (g x)))
(define (f-tail x) (g x))
(print (f 1) (f-tail 1))
(define (g x) (- x 1))
(print (f 1) (f-tail 1))
(set! g (lambda (a b) a))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (f 1)))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (f-tail 1)))
(set! g (lambda (a) (car a)))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (f 1)))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (f-tail 1)))
(set! g 7)
(print (guard (e (#t (list (error-kind e) (error-message e)))) (f 1)))
(set! g car)
(print (f '(4)) (f-tail '(5)))
(set! g (lambda (x . more) (list x more)))
(print (f-tail 1))
(define (h x) (+ x 1))
(define (caller n acc)
  (if (= n 50) (jit-exclude! "h"))
  (if (= n 0) acc (caller (- n 1) (+ acc (h n)))))
(print (caller 100 0) (caller 10 0))
(define (make-counter)
  (let ((n 0)) (lambda (d) (set! n (+ n d)) n)))
(define c1 (make-counter))
(define (bump-all k times) (if (= times 0) (k 0) (begin (k 2) (bump-all k (- times 1)))))
(print (bump-all c1 10) (bump-all c1 5))
(define (adder a) (lambda (x) (+ x a)))
(define (twice k x) (k (k x)))
(print (twice (adder 10) 1)
       (guard (e (#t (error-kind e))) (twice (adder 2305843009213693951) 1)))
(define (thrower x) (if (< x 0) (error "negative" x) x))
(define (sum-thrown xs) (if (null? xs) 0 (+ (thrower (car xs)) (sum-thrown (cdr xs)))))
(print (sum-thrown '(1 2 3)))
(sum-thrown '(1 -2 3))
"""
        want = run(["--tier=cek"], src)
        self.assertEqual(want[0], 1, want[2])
        self.assertTrue(want[2].startswith("error: user-error: negative -2"), want[2])
        for t in ("0", "1", "10"):
            got = run(["--tier=jit", "--jit-threshold=" + t], src, env={"SXPOOL_JIT_STRICT": "1"},
                      report=True)
            self.assertEqual(got[:3], want, "threshold " + t)
            r = got[3]
            if t == "0":
                # f's and f-tail's calls of g, caller's calls of h before it
                # was excluded, bump-all's, twice's and sum-thrown's
                self.assertGreater(r.counts["calls-direct"], 60, r)
                self.assertIn(("h", "excluded"), [(x.name, x.reason) for x in r.refused], r)

    def test_built_ins_called_directly_agree_with_cek(self):
        # a call site whose callee was a built-in at compile time calls its C
        # function directly, in tail position too; apply (under its own
        # name or another) in tail position stays a tail call (10^6 deep);
        # a global redefined to a closure, to another built-in of another
        # arity, or one called with the wrong count raises CEK's error
        src = """
(define (loop n) (if (= n 0) 'done (apply loop (list (- n 1)))))
(print (loop 1000000))
(define my-apply apply)
(define (loop2 n) (if (= n 0) 'done2 (my-apply loop2 (list (- n 1)))))
(print (loop2 1000000))
(define (mk a b) (cons a b))
(define (mk-in a b) (list (cons a b)))
(print (mk 1 2) (mk-in 1 2))
(set! cons (lambda (a b) (list 'c a b)))
(print (mk 1 2) (mk-in 1 2))
(set! cons list)
(print (mk 1 2) (mk-in 1 2))
(set! cons car)
(print (guard (e (#t (list (error-kind e) (error-message e)))) (mk 1 2)))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (mk-in 1 2)))
(define (rem a b) (remainder a b))
(print (rem 7 3) (guard (e (#t (list (error-kind e) (error-message e)))) (rem 7 0)))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (rem 'x 0)))
(define (ap f x) (f x x))
(print (ap + 3) (ap list 4) (guard (e (#t (list (error-kind e) (error-message e)))) (ap car 1)))
(define (rem-wrong a) (remainder a))
(print (guard (e (#t (list (error-kind e) (error-message e)))) (rem-wrong 1)))
"""
        want = run(["--tier=cek"], src, timeout=300)
        self.assertEqual(want[0], 0, want[2])
        for t in ("0", "1", "10"):
            got = run(["--tier=jit", "--jit-threshold=" + t], src, env={"SXPOOL_JIT_STRICT": "1"},
                      timeout=300)
            self.assertEqual(got, want, "threshold " + t)

    def test_bodies_resume_where_heads_stopped(self):
        # a head that stops (a call, a slow path, an error to raise) in a
        # block it entered with an empty operand stack, after no store into
        # a slot, restarts the body at that block instead of its start;
        # every way there must give CEK's results: tests decided in the head
        # and not redone, slow paths of inline primitives (non-fixnums, a
        # non-pair), errors, let-bound slots (no resume past them), two
        # parameters, calls of other functions, redefinitions
        src = """
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(define (sgn a b) (cond ((< a 0) 'neg) ((< b 0) (sgn b a)) ((= a b) 'same) (else (list a b))))
(define (first-neg x) (if (null? x) 'none (if (< (car x) 0) (car x) (first-neg (cdr x)))))
(define (sum-to n acc) (if (< n 1) acc (sum-to (- n 1) (+ acc n))))
(define (lets n) (let ((m (+ n 1))) (if (< m 3) m (lets (- m 3)))))
(define (other n) (if (< n 1) 0 (+ 1 (fib n))))
(define (err n) (if (< n 0) (car n) (if (< n 5) 'small (err (- n 1)))))
(print (fib 15) (fib 1.5) (guard (e (#t (error-kind e))) (fib "x")))
(print (sgn -1 2) (sgn 1 -2) (sgn 3 3) (sgn 3 4) (sgn 1.5 2) (sgn 2 1.5))
(print (guard (e (#t (error-kind e))) (sgn 'a 1)) (guard (e (#t (error-kind e))) (sgn 1 'b)))
(print (first-neg '(1 2 -3 4)) (first-neg '()) (first-neg '(1.5 -2.5)))
(print (guard (e (#t (error-kind e))) (first-neg '(1 x))) (guard (e (#t (error-kind e))) (first-neg 5)))
(print (sum-to 100 0) (sum-to 10 0.5) (sum-to 2.5 0) (lets 20) (lets 1.5))
(print (other 10) (other 0.5) (err 3) (err 7) (guard (e (#t (error-kind e))) (err -1)))
(set! < (lambda (a b) (> a b)))
(print (sgn 1 2) (first-neg '(3 -1)) (other 2))
"""
        self.assertAgreesAtThresholds(src)

    def test_assumed_globals_agree_with_cek(self):
        # functions that call only themselves and inline built-ins assume
        # the globals of their callees (jit/README.md, "Assumed globals");
        # a write to such a global, from CEK's define, the VM's set! or
        # native code's set!, drops the code that assumed it before the
        # writer goes on, and the function is compiled again, assuming
        # nothing. Callees reached on some paths only, or from either of
        # two globals, are not assumed; a function that calls anything
        # else assumes nothing.
        src = """
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(define (tak x y z)
  (if (not (< y x)) z (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y))))
(define (ack m n)
  (cond ((= m 0) (+ n 1)) ((= n 0) (ack (- m 1) 1)) (else (ack (- m 1) (ack m (- n 1))))))
(define (pick n) (if (< n 1) 0 (+ ((if (odd? n) car cdr) (cons n n)) 0)))
(define (mix n) (if (< n 1) 0 (+ (if (< n 5) 1 2) (mix (- n 1)))))
(define (sum-list xs) (if (null? xs) 0 (+ (car xs) (sum-list (cdr xs)))))
(define (lst n) (if (= n 0) '() (cons n (lst (- n 1)))))
(define (get-plus) +)
(define (plus-of n) (if (< n 1) (get-plus) (plus-of (- n 1))))
(define (me n) (if (< n 1) me (me (- n 1))))
(print (fib 18) (tak 12 8 4) (ack 2 5) (pick 3) (mix 10) (sum-list (lst 100)))
(print (eq? (plus-of 3) +) (eq? (me 3) me))
(define saved-fib fib)
(define (fib n) 1)
(print (saved-fib 5) (fib 5))
(define real+ +)
(define (set-plus! f) (set! + f))
(set-plus! (lambda (a b) (real+ a (real+ b 100))))
(print (sum-list (lst 5)) (mix 3) (ack 1 1))
(set-plus! real+)
(print (sum-list (lst 5)) (mix 3) (ack 1 1))
(set! < (lambda (a b) (> b a)))
(print (tak 12 8 4) (saved-fib 3) (me 2) (pick 4))
(define car cdr)
(print (pick 5) (lst 3))
"""
        want = self.assertAgreesAtThresholds(src)
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], src, report=True)
        self.assertEqual((rc, out, err), want)
        # fib, tak, ack, mix, sum-list, lst, me and the new <'s lambda (its
        # > is inline); not get-plus and the new fib (no call), pick (calls
        # odd?, and car or cdr), plus-of and set-plus! (a call of another
        # function, a store into a global)
        self.assertEqual(r.counts["functions-assuming"], 8, r)
        # the first fib (its name redefined), then + (sum-list, mix, ack;
        # fib's is gone already), < (tak, me); car and the second + find
        # nothing left that assumes them. Each of them is compiled again
        # (at its next call: threshold 0) and runs native code.
        self.assertEqual(r.counts["functions-redefined"], 6, r)
        self.assertEqual((r.refused, r.counts["calls-vm"]), ([], 0), r)
        fns = [(c.name, c.hash) for c in r.compiled]
        twice = sorted(f[0] for f in set(fns) if fns.count(f) == 2)
        self.assertEqual(twice, ["ack", "fib", "me", "mix", "sum-list", "tak"], r)

    def test_assumed_globals_are_checked_when_code_is_installed(self):
        # code from the cache (or from a batch compiled before the program
        # went on) that assumes globals is installed only while they hold;
        # otherwise the function is compiled again, assuming nothing, and
        # that code has cache entries of its own
        # fib's + is an inline PRIM: + held the built-in when fib was loaded
        fib = "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n"
        call = "(print (fib 15))\n"
        plus = "(define real+ +)\n(set! + (lambda (a b) (real+ a b 1)))\n"
        with tempfile.TemporaryDirectory(prefix="sxpool-test-jit-assume-") as cache:
            args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            rc, out, err, r = run(args, fib + call, report=True)
            self.assertEqual((rc, out, err), (0, "610\n", ""))
            self.assertReport(r, {"functions-compiled": 1, "functions-assuming": 1,
                                  "calls-native": 1973})
            want = run(["--tier=cek"], fib + plus + call)
            self.assertEqual(want[:2], (0, "1596\n"), want[2])
            for cached in (0, 1):
                rc, out, err, r = run(args, fib + plus + call, report=True)
                self.assertEqual((rc, out, err), want)
                # fib, compiled or from the cache, and +'s lambda
                self.assertReport(r, {"functions-compiled": 2, "functions-assuming": 0,
                                      "functions-redefined": 1, "functions-cached": 2 * cached})
                self.assertGreater(r.counts["calls-native"], 1900, r)

    def test_specialized_bodies_agree_with_cek_and_run(self):
        # a function with a head and no tail call gets a body specialized
        # for parameters that are fixnums (SYMBOL_c, jit/README.md): the
        # head goes there only when they are; floats, other values, the
        # fixnum range's ends (overflow in the specialized code) and a
        # parameter that is stored into give what CEK gives
        src = """
(define (err thunk) (guard (e (#t 'caught)) (thunk)))
(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(define (sub3 a b) (if (< a b) b (+ (- a 1) (* (- b 2) (+ a b)))))
(define (bump n) (if (< n 0) n (begin (set! n (+ n 0.5)) (list n (- n 1)))))
(define (down n k) (if (= n 0) k (+ 1 (down (- n 1) (- k 3)))))
(print (fib 20) (fib 7.5) (fib -3) (fib 2.0))
(print (sub3 10 3) (sub3 1 2) (sub3 2.5 1) (sub3 4 1.5) (err (lambda () (sub3 5 'a))))
(print (bump 4) (bump -1) (down 30 7) (down 5 -2305843009213693930))
(print (err (lambda () (sub3 2305843009213693951 -2305843009213693952))))
(print (err (lambda () (down 3 -2305843009213693952))))
"""
        want = self.assertAgreesAtThresholds(src)
        self.assertIn("6765", want[1])
        self.assertEqual(want[1].count("caught"), 3, want)
        # fib, sub3 and down have specialized bodies, bump (a stored
        # parameter) none; they are in the code cache's objects
        nm = shutil.which("nm")
        self.assertIsNotNone(nm, "nm (binutils) is needed")
        with tempfile.TemporaryDirectory(prefix="sxpool-test-jit-spec-") as cache:
            os.chmod(cache, 0o700)
            args = ["--tier=jit", "--jit-threshold=0", "--jit-cache=" + cache]
            rc, out, err, r = run(args, src, report=True)
            self.assertEqual((rc, out, err), want)
            names = {c.name: c.hash for c in r.compiled}
            syms = set()
            for root, _, files in os.walk(cache):
                for f in files:
                    if f.endswith(".so"):
                        p = subprocess.run([nm, "-D", "--defined-only", os.path.join(root, f)],
                                           capture_output=True, text=True, check=True)
                        syms |= {line.split()[-1] for line in p.stdout.splitlines()}
            for name in ("fib", "sub3", "down"):
                self.assertIn("sx_%s_c" % names[name], syms, name)
            self.assertNotIn("sx_%s_c" % names["bump"], syms)

    def test_deep_mutual_recursion_through_direct_entries(self):
        # non-tail mutual recursion between two functions called through
        # their direct entries goes as deep as self recursion does, and past
        # the C stack's limit ends in CEK's error, not a crash
        depth = 30000 if os.environ.get("SXPOOL_SANITIZE") else 100000
        src = """
(define (down-a n) (if (= n 0) 0 (+ 1 (down-b (- n 1)))))
(define (down-b n) (if (= n 0) 0 (+ 1 (down-a (- n 1)))))
(print (down-a DEPTH))
(define (up-a n) (+ 1 (up-b n)))
(define (up-b n) (+ 1 (up-a n)))
(up-a 0)
""".replace("DEPTH", str(depth))
        want = run(["--tier=cek"], src, timeout=300)
        self.assertEqual((want[0], want[1]), (1, "%d\n" % depth), want[2])
        self.assertTrue(want[2].startswith("error: stack-overflow: "), want[2])
        rc, out, err, r = run(["--tier=jit", "--jit-threshold=0"], src, report=True, timeout=300)
        self.assertEqual((rc, out), (want[0], want[1]), err)
        self.assertTrue(err.startswith("error: stack-overflow: "), err)
        self.assertGreater(r.counts["calls-direct"], depth, r)

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
