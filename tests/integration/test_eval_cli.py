"""`sxpool eval` and `sxpool repl` from the command line: output and exit
status, uncaught errors and read-errors, several files, tiers, bad flags,
missing files, the memory limit, memory use of a long run that makes
short-lived garbage, deep and unbounded recursion, and the REPL's
read-eval-print loop on stdin.

Every child runs with a time limit and is killed by its pid when it
overruns; each one is reaped with os.wait4 so its own peak RSS is known."""

import os
import re
import signal
import tempfile
import time
import unittest

import sxtest


class Result:
    def __init__(self, rc, out, err, maxrss_kb):
        self.rc = rc            # exit status; negative: killed by that signal
        self.out = out
        self.err = err
        self.maxrss_kb = maxrss_kb

    def __repr__(self):
        return "<rc=%r out=%r err=%r maxrss=%d KB>" % (self.rc, self.out[:300], self.err[:300],
                                                       self.maxrss_kb)


def run(args, stdin=b"", timeout=30):
    """Runs sxpool with args and stdin (bytes), output to temporary files.
    Polls the child with os.wait4 until it exits; past the timeout it is
    killed by pid and the test fails."""
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
            tempfile.TemporaryFile() as ferr:
        fin.write(stdin)
        fin.seek(0)
        pid = os.posix_spawn(sxpool_path(), [sxpool_path()] + list(args), os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fin.fileno(), 0),
                                           (os.POSIX_SPAWN_DUP2, fout.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, ferr.fileno(), 2)])
        deadline = time.monotonic() + timeout
        while True:
            wpid, status, usage = os.wait4(pid, os.WNOHANG)
            if wpid == pid:
                break
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                os.wait4(pid, 0)
                raise AssertionError("sxpool %s did not exit within %d s"
                                     % (" ".join(args), timeout))
            time.sleep(0.01)
        fout.seek(0)
        ferr.seek(0)
        out = fout.read().decode("utf-8", "replace")
        err = ferr.read().decode("utf-8", "replace")
    return Result(os.waitstatus_to_exitcode(status), out, err, usage.ru_maxrss)


def sxpool_path():
    return sxtest.sxpool()


class Files:
    """SX source files in a private temporary directory."""

    def __init__(self, test):
        self.dir = tempfile.TemporaryDirectory(prefix="sxpool-eval-")
        test.addCleanup(self.dir.cleanup)
        self.n = 0

    def write(self, text, name=None):
        self.n += 1
        path = os.path.join(self.dir.name, name or "prog%d.sx" % self.n)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        return path


class EvalCase(unittest.TestCase):
    def setUp(self):
        self.files = Files(self)

    def eval(self, source, flags=(), timeout=30):
        return run(["eval"] + list(flags) + [self.files.write(source)], timeout=timeout)

    def assert_ok(self, r, out):
        self.assertEqual((r.rc, r.out, r.err), (0, out, ""), r)

    def assert_uncaught(self, r, kind, out=""):
        """Exit 1, stdout exactly `out`, and one stderr line naming `kind`."""
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.out, out, r)
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr: %r" % r)
        self.assertTrue(r.err.endswith("\n"), r)
        self.assertTrue(lines[0].startswith("error: %s: " % kind), r)
        return lines[0]


class Eval(EvalCase):
    def test_output_and_exit_0(self):
        r = self.eval('(define (sq x) (* x x))\n'
                      '(display "squares:")\n'
                      '(for-each (lambda (i) (display " ") (display (sq i))) (iota 4))\n'
                      '(newline)\n'
                      '(write (list "a\\nb" #\\c 1.5 :k (quote sym) {:a (+ 1 2)} #(1 2)))\n'
                      '(newline)\n'
                      '(print "x=" 1 " " nil)\n')
        self.assert_ok(r, 'squares: 0 1 4 9\n'
                          '("a\\nb" #\\c 1.5 :k sym {:a 3} #(1 2))\n'
                          'x=1 ()\n')

    def test_empty_program(self):
        self.assert_ok(self.eval(""), "")
        self.assert_ok(self.eval("; only a comment\n#| and a block |#\n"), "")

    def test_uncaught_error_stops_the_run(self):
        cases = [
            ("(car 1)", "type-error", "error: type-error: car: expected (pair), got (integer)"),
            ('(error "bad thing" 1 "x" (quote (a b)))', "user-error",
             'error: user-error: bad thing 1 "x" (a b)'),
            ('(raise (list 1 "two"))', "raised", 'error: raised: (1 "two")'),
            ("(no-such-procedure 1)", "unbound-variable",
             "error: unbound-variable: unbound variable: no-such-procedure"),
            ("(quotient 1 0)", "division-by-zero",
             "error: division-by-zero: quotient: division by zero"),
            ("(vector-ref (vector 1 2) 2)", "index-error",
             "error: index-error: vector-ref: index 2 out of range for length 2"),
            ("(+ 2305843009213693951 1)", "overflow",
             "error: overflow: +: integer result out of range"),
            ("((lambda (x) x))", "arity-error",
             "error: arity-error: #<fn>: expected 1 argument, got 0"),
            ("(if)", "syntax-error", "error: syntax-error: if: expected (if test then [else]): (if)"),
            ("(perform :no-such-effect)", "effect-error",
             "error: effect-error: perform :no-such-effect: unknown effect"),
            ('(error "two\\nlines")', "user-error", "error: user-error: two\\nlines"),
        ]
        for form, kind, line in cases:
            with self.subTest(form=form):
                r = self.eval('(display "before")\n(newline)\n'
                              + form + '\n'
                              '(display "after")\n'
                              '(perform :log "logged after")\n')
                self.assertEqual(self.assert_uncaught(r, kind, out="before\n"), line)

    def test_guard_catches_and_the_run_goes_on(self):
        r = self.eval('(display (guard (e (#t (error-kind e))) (car 1)))\n'
                      '(display " next")\n')
        self.assert_ok(r, "type-error next")

    def test_read_error_anywhere_means_nothing_runs(self):
        cases = [
            ('(display "a")\n(display "b")\n  (car 1+)\n', r"3:8: bad number: 1\+"),
            ('(display "a")\n(display "b"))\n', r"2:14: unexpected '\)'"),
            ('(display "a")\n(display "unterminated)\n', r"2:10: unterminated string"),
            ('(display "a")\n(display (list 1 2)\n', r"2:1: unbalanced '\('"),
            ('(display "a")\n{:odd}\n', r"2:1: dict literal with an odd number of forms"),
            ('(display "a")\n[1 2]\n', r"2:1: "),
            (b'(display "a")\n(display "\xff")\n', r"2:11: invalid UTF-8"),
            ('(display "λλ") (display "\\q")\n', r"1:26: bad escape"),
        ]
        for source, message in cases:
            with self.subTest(source=source):
                r = run(["eval", self.files.write(source)])
                line = self.assert_uncaught(r, "read-error", out="")
                self.assertRegex(line, r"^error: read-error: \d+:\d+: ")
                self.assertRegex(line, r"^error: read-error: " + message)

    def test_several_files_run_in_order_and_share_globals(self):
        first = self.files.write('(define counter 1)\n'
                                 '(define (bump!) (set! counter (+ counter 1)) counter)\n'
                                 '(define-macro (twice e) (list (quote begin) e e))\n'
                                 '(perform :kv/put "k" "from first")\n'
                                 '(display "first ")\n')
        second = self.files.write('(twice (bump!))\n'
                                  '(display (list "second" counter (perform :kv/get "k")))\n')
        third = self.files.write('(display " third ")\n(display (bump!))\n(newline)\n')
        r = run(["eval", first, second, third])
        self.assert_ok(r, 'first (second 3 from first) third 4\n')

        # An error in one file: the files before it ran, the ones after do not.
        failing = self.files.write('(display "failing ")\n(car (quote ()))\n(display "never")\n')
        r = run(["eval", first, failing, third])
        self.assert_uncaught(r, "type-error", out="first failing ")

        # A read-error in a later file: that file does not run at all.
        unreadable = self.files.write('(display "never")\n(\n')
        r = run(["eval", first, unreadable, third])
        self.assert_uncaught(r, "read-error", out="first ")

    def test_every_tier_gives_the_same_output(self):
        # (source, exit status, stdout, start of the stderr line) on every
        # tier; the vm and jit tiers are required: "not available" fails
        programs = [
            ('(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n'
             '(define (loop i acc) (if (= i 0) acc (loop (- i 1) (+ acc 1))))\n'
             '(print (fib 20) " " (loop 100000 0))\n'
             '(write (map (lambda (x) (* x x)) (range 5)))\n'
             '(write (guard (e (#t (list (error-kind e) (error-message e)))) (vector-ref #() 0)))\n'
             '(write (let ((d {:a 1})) (dict-set! d :b (/ 1 3)) d))\n',
             0, '6765 100000\n(0 1 4 9 16)'
                '(index-error "vector-ref: index 0 out of range for length 0")'
                '{:a 1 :b 0.3333333333333333}', ""),
            ('(display "partial")\n(define (f n) (+ 1 (f n)))\n(f 0)\n',
             1, "partial", "error: stack-overflow: "),
            ('(display "partial")\n(error "custom" 42)\n',
             1, "partial", "error: user-error: custom 42\n"),
        ]
        for source, rc, out, err in programs:
            path = self.files.write(source)
            for tier in ("cek", "vm", "jit"):
                with self.subTest(tier=tier, source=source):
                    flags = ["--tier=" + tier]
                    if tier == "jit":
                        flags.append("--jit-threshold=0")
                    r = run(["eval"] + flags + [path], timeout=60)
                    self.assertEqual((r.rc, r.out), (rc, out), r)
                    self.assertTrue(r.err.startswith(err), r)
                    self.assertEqual(len(r.err.splitlines()), 1 if err else 0, r)
        # the jit tier ran native code, not only the VM
        r = self.eval("(define (f x) (+ x 1))\n(f 1)\n"
                      "(display (list (get (jit-stats) :compiled) (get (jit-stats) :native-calls)))\n",
                      flags=["--tier=jit", "--jit-threshold=0"], timeout=60)
        self.assertEqual((r.rc, r.err), (0, ""), r)
        compiled, native_calls = (int(x) for x in r.out.strip("()").split())
        self.assertGreaterEqual(compiled, 1, r)
        self.assertGreaterEqual(native_calls, 1, r)

    def test_bad_flags_exit_2(self):
        path = self.files.write('(display "ran")\n')
        for args in (["--no-such-flag", path], ["--tier=bogus", path], ["--memory-limit=0", path],
                     ["--memory-limit=lots", path], ["-x", path], []):
            with self.subTest(args=args):
                r = run(["eval"] + args)
                self.assertEqual(r.rc, 2, r)
                self.assertEqual(r.out, "", r)
                self.assertNotEqual(r.err.strip(), "", r)
        r = run(["eval", "--no-such-flag", path])
        self.assertEqual(len(r.err.splitlines()), 1, r)
        self.assertIn("--no-such-flag", r.err)

    def test_help(self):
        r = run(["eval", "--help"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("usage: sxpool eval", r.out)

    def test_missing_file(self):
        missing = os.path.join(self.files.dir.name, "no-such-file.sx")
        r = run(["eval", missing])
        line = self.assert_uncaught(r, "io-error")
        self.assertIn("cannot open " + missing, line)
        self.assertIn("No such file or directory", line)

        # The files before it have run; the ones after it do not.
        before = self.files.write('(display "before")\n')
        after = self.files.write('(display "after")\n')
        r = run(["eval", before, missing, after])
        self.assert_uncaught(r, "io-error", out="before")

    def test_memory_limit(self):
        grow = ('(define (grow acc) (grow (cons (make-vector 64 0) acc)))\n'
                '(display "start")\n')
        for body in ('(grow (quote ()))', '(guard (e (#t (display "caught"))) (grow (quote ())))'):
            with self.subTest(body=body):
                r = self.eval(grow + body + '\n(display "never")\n',
                              flags=["--memory-limit=64M"], timeout=120)
                self.assert_uncaught(r, "memory-limit", out="start")

    def test_short_lived_garbage_is_reclaimed(self):
        # 320,000 lists of 1000 pairs: about 5 GB allocated over the run.
        r = self.eval('(define (loop i acc)\n'
                      '  (if (= i 0) acc (loop (- i 1) (+ acc (length (iota 1000))))))\n'
                      '(display (loop 320000 0))\n', timeout=240)
        self.assert_ok(r, "320000000")
        self.assertLess(r.maxrss_kb, 100 * 1024, "peak RSS %d KB" % r.maxrss_kb)

    def test_deep_non_tail_recursion(self):
        r = self.eval('(define (count n) (if (= n 0) 0 (+ 1 (count (- n 1)))))\n'
                      '(display (count 100000))\n'
                      '(define (build n) (if (= n 0) (quote ()) (cons n (build (- n 1)))))\n'
                      '(display " ")\n'
                      '(display (length (build 100000)))\n', timeout=60)
        self.assert_ok(r, "100000 100000")

    def test_unbounded_recursion_is_stack_overflow(self):
        programs = {
            "direct": '(define (f n) (+ 1 (f n)))\n(f 1)\n',
            "through map":
                '(define (f n) (car (map (lambda (x) (+ 1 (f x))) (list n))))\n(f 1)\n',
            "through for-each":
                '(define (f n) (for-each (lambda (x) (f x)) (list n)) 0)\n(f 1)\n',
            "through sort":
                '(define (f n) (sort (list 2 1) (lambda (a b) (f n))))\n(f 1)\n',
            "through apply": '(define (f n) (+ 1 (apply f (list n))))\n(f 1)\n',
            "guard cannot catch it":
                '(define (f n) (+ 1 (f n)))\n(guard (e (#t (display "caught"))) (f 1))\n',
            "guard in every frame":
                '(define (f n) (guard (e (#f 0)) (+ 1 (f n))))\n(f 1)\n',
        }
        for name, source in programs.items():
            with self.subTest(name):
                r = self.eval('(display "start")\n' + source + '(display "never")\n', timeout=60)
                self.assertGreaterEqual(r.rc, 0, "killed by signal %d: %r" % (-r.rc, r))
                self.assert_uncaught(r, "stack-overflow", out="start")

    def test_debugging_forms_keep_the_limits_uncatchable(self):
        # vm-trace ends its trace with an error guard could catch, but the
        # evaluation's limits go through it as they go through guard.
        # Before, vm-trace caught both: the program printed its trace and
        # "never", and exited 0. The list is built outside the trace; its
        # comparison recurses in C until the stacks and the heap together
        # pass the limit.
        deep = ('(define (nest n acc) (if (= n 0) acc (nest (- n 1) (list acc))))\n'
                '(define a (nest 1000000 0))\n(define b (nest 1000000 0))\n')
        cases = [("memory-limit", "", '(vm-trace "(make-vector 100000000 0)")'),
                 ("stack-overflow", deep, '(vm-trace "(equal? a b)")')]
        for kind, setup, form in cases:
            for body in (form, '(guard (e (#t (display "caught"))) %s)' % form):
                with self.subTest(kind=kind, body=body):
                    r = self.eval(setup + '(display "start")\n' + body + '\n(display "never")\n',
                                  flags=["--tier=vm", "--memory-limit=64M"], timeout=60)
                    self.assert_uncaught(r, kind, out="start")
        r = self.eval('(display (string-contains? (vm-trace "(car 1)") "raised: #<error type-error"))\n')
        self.assert_ok(r, "#t")

    def test_memory_limit_counts_the_printer_and_string_buffers(self):
        # Text built outside plain objects counts against the limit and is
        # given back: str of a 640 MB printed form under 16M. Before, the
        # printer's malloc buffer grew to 640 MB first (3.2 GB for 100,000
        # items) and the error came only when its string could not be made.
        prog = ('(define (dup s n) (if (= n 0) s (dup (string-append s s) (- n 1))))\n'
                '(define big (dup "0123456789abcdef" 11))\n(display "start")\n')
        for body in ('(str (make-vector 20000 big))', '(apply string-append (vector->list (make-vector 20000 big)))',
                     '(write (make-vector 20000 big))'):
            for tier in ("cek", "vm"):
                with self.subTest(body=body, tier=tier):
                    r = self.eval(prog + body + '\n(display "never")\n',
                                  flags=["--tier=" + tier, "--memory-limit=16M"], timeout=60)
                    self.assert_uncaught(r, "memory-limit", out="start")
                    self.assertLess(r.maxrss_kb, 100 * 1024, "peak RSS %d KB" % r.maxrss_kb)

    def test_recursion_through_builtins_stays_within_the_limit(self):
        # Nested runs of the evaluator (map calling back into SX) hold C
        # stack and VM stack as well as heap: all of it counts. Before, the
        # vm tier reached 427 MB and the jit tier 880 MB under 64M.
        src = '(define (nest n) (car (map (lambda (x) (+ 1 (nest x))) (list n))))\n(nest 0)\n'
        for tier in ("cek", "vm", "jit"):
            with self.subTest(tier=tier):
                r = self.eval(src, flags=["--tier=" + tier, "--memory-limit=64M"], timeout=60)
                self.assert_uncaught(r, "stack-overflow")
                self.assertLess(r.maxrss_kb, (64 + 80) * 1024, "peak RSS %d KB" % r.maxrss_kb)


class Repl(unittest.TestCase):
    PROMPTS = re.compile(r"(?m)^(?:sx> )+")

    def repl(self, text, timeout=30):
        r = run(["repl"], stdin=text.encode("utf-8"), timeout=timeout)
        self.assertEqual(r.rc, 0, r)
        return r

    def values(self, r):
        """The printed values, one a line, without prompts. The REPL ends
        its output with a newline at EOF, which gives a last empty line."""
        lines = self.PROMPTS.sub("", r.out).split("\n")
        self.assertEqual(lines[-2:], ["", ""], r)
        return lines[:-2]

    def test_values_are_printed_in_write_form(self):
        r = self.repl('(+ 1 2)\n'
                      '"a\\nb"\n'
                      '#\\a\n'
                      '(list 1.5 :k "s" (quote sym) #\\space)\n'
                      '(define x 10)\n'
                      'x\n'
                      '{:a 1 "b" (list 2 3)}\n'
                      '(vector 1 "x")\n'
                      '(lambda () 1)\n'
                      '1 2 (quote three)\n')
        self.assertEqual(self.values(r), ['3', '"a\\nb"', '#\\a', '(1.5 :k "s" sym #\\space)',
                                          '()', '10', '{:a 1 "b" (2 3)}', '#(1 "x")', '#<fn>',
                                          '1', '2', 'three'])
        self.assertEqual(r.err, "")

    def test_a_form_is_read_across_lines(self):
        r = self.repl('(+ 1\n'
                      '   2\n'
                      '   3)\n'
                      '(list "a\n'
                      ' b"\n'
                      ' #| a comment\n'
                      '    over lines |# 4)\n'
                      '(define (f x)\n'
                      '  (* x 2))\n'
                      '(f 21)\n')
        self.assertEqual(self.values(r), ['6', '("a\\n b" 4)', '()', '42'])
        self.assertEqual(r.err, "")

    def test_an_error_is_reported_and_the_repl_goes_on(self):
        r = self.repl('(define y 5)\n'
                      '(car 1)\n'
                      'y\n'
                      '(undefined-thing)\n'
                      ')\n'
                      '(error "custom" 1)\n'
                      '(+ y 1)\n')
        self.assertEqual(self.values(r), ['()', '5', '6'])
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 4, r)
        self.assertTrue(lines[0].startswith("error: type-error: "), lines)
        self.assertTrue(lines[1].startswith("error: unbound-variable: "), lines)
        self.assertTrue(lines[2].startswith("error: read-error: 1:1: "), lines)
        self.assertEqual(lines[3], "error: user-error: custom 1")

    def test_eof_exits_0(self):
        r = self.repl("")
        self.assertEqual((self.values(r), r.err), ([], ""))
        r = self.repl("(* 6 7)")  # no newline at the end
        self.assertEqual(self.values(r), ["42"])
        r = self.repl("(display 1)\n(+ 1\n")  # an unfinished form at EOF is dropped
        self.assertEqual((self.values(r), r.err), (["1()"], ""))

    def test_stack_overflow_in_the_repl(self):
        r = self.repl('(define (f n) (+ 1 (f n)))\n(f 1)\n(+ 1 1)\n', timeout=60)
        self.assertEqual(self.values(r), ['()', '2'])
        self.assertTrue(r.err.startswith("error: stack-overflow: "), r)


if __name__ == "__main__":
    sxtest.main()
