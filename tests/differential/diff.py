#!/usr/bin/env python3
"""Differential testing of sxpool's tiers with random SX programs.

    diff.py SXPOOL [--tiers=cek,vm,jit0,jit1,jit10,jit1000] [--count=N]
            [--seed=S | --time-seed] [--seconds=T] [--shape=mixed|classic|higher-order]
            [--save-dir=DIR] [--jobs=J] [--shrink-seconds=T] [--shrink-max=K]
            [--no-coverage] [--max-compile-ms=MS] [--gc-vary=auto|off] [--cores]
    diff.py SXPOOL --regressions [--tiers=...] [--runner=RUN.SH] [--regressions-dir=DIR]
    diff.py --check-report FILE...      (parse coverage reports, print the totals)

Program i of a run is `gen.generate(S + i, SHAPE)`, so any single program
can be replayed with `--seed=SEED --count=1`.  `--time-seed` takes S from
the clock and prints it first.  Each program is written to a temporary file
and run, each run its own process, as

    cek       SXPOOL eval --tier=cek FILE
    vm        SXPOOL eval --tier=vm FILE
    jitN      SXPOOL eval --tier=jit --jit-threshold=N FILE

with stdin from /dev/null and SXPOOL_JIT_STRICT=1 (a function the JIT fails
to compile ends the run with status 3).  jit0 compiles every function before
its first call; at 1 and 10 functions are compiled on the background compile
thread while the program runs, and 1000 is the default threshold: the
production path.  `jit` alone means jit0.

The collector's GC_FREE_SPACE_DIVISOR is drawn from the seed for each
program (the default for most; --gc-vary=off keeps the default for all) and
used for all of its runs: when collections happen changes nothing a program
prints, but a root native code forgets is found only when one happens at the
wrong moment.

Every tier asked for must pass a probe (a one-line program): a tier that
cannot run is a failure, never left out.

Time limits.  The first tier (cek when asked for) runs with a limit of
REF_LIMIT seconds; every other tier gets max(MIN_LIMIT, LIMIT_FACTOR x the
first tier's time) on the same program, so a busy machine, or a jit run that
is slow because it is compiling, does not fail a program (compile times are
checked by the coverage report instead).

What counts as a failure:
  - for every tier alone: a timeout, death by a signal (a crash at exit
    after the right output included), an ASan or UBSan report on stderr
    (sanitizer builds), an exit status other than 0 or 1,
    status 1 without an "error: KIND: " first line on stderr, an error kind
    SX.md does not list, or an exit status other than the one the generator
    expects (1 exactly when the program ends with its one deliberate uncaught
    error);
  - across tiers: any difference in stdout, exit status or error kind from
    the first tier;
  - coverage (jit0 runs, unless --no-coverage): each jit run writes
    `--jit-report=PATH` (one `key value` a line: functions-compiled,
    functions-refused, functions-failed, functions-assuming,
    functions-redefined, calls-native, calls-vm, toplevel-forms, and lines
    `refused NAME HASH REASON`, `compile-ms NAME HASH MS`).  A missing
    report, a refusal whose reason is not in ALLOWED_REFUSALS, a failed
    compile, an aggregate share of native calls below MIN_NATIVE_SHARE over
    the jit0 runs of programs that make at least one call outside top-level
    forms, or jit0 runs of programs that redefine globals (gen.py's r_redef
    pieces) none of which dropped native code assuming them
    (functions-redefined) fails the run.  The distribution of
    compile times per function (median, p99, max) is printed, with every
    function over COMPILE_MS_NOTE ms listed; --max-compile-ms=MS makes one
    over MS a failure (off by default: compile time depends on the load).
    The other jit tiers write reports too; their totals are printed (how
    much native code ran on the production path) but not checked.

The run does not stop at the first failure: every failing seed is listed.
Then the first failure of each kind (up to --shrink-max kinds) is shrunk:
delta debugging removes top-level forms, then each compound subexpression
is replaced by one of its children or loses an element, keeping every change
after which the same failure remains (only the first tier and the failing
tier are run while shrinking; a failure that does not happen on every run is
retried up to 3 times before a candidate counts as passing).  The result is
saved as SAVE_DIR/NNNN-SEED.sx with the first tier's stdout as NNNN-SEED.out
and, when it ends with an error, its "error: KIND: " prefix as NNNN-SEED.err:
the conformance suite's format.  SAVE_DIR defaults to ./diff-saved (a
temporary directory when the current directory is in the source tree); a
SAVE_DIR in the source tree, outside its build* directories, is refused.
Copying a saved program into regressions/ is a deliberate, human step; `--regressions`
runs everything there through the conformance runner on every tier (jit
tiers REGRESSION_JIT_RUNS times over: some failures do not happen on every
run).

--cores keeps the core dump of every crashed run (the kernel's core_pattern
must be a plain file name) under SAVE_DIR/cores with the program and a
backtrace of every thread: for crashes too rare to happen again.

Exit status: 0 when every program passed, 1 after a failure (an unavailable
tier included), 2 on bad use.
"""

import argparse
import concurrent.futures
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # keep the source tree clean
import gen  # noqa: E402

sys.setrecursionlimit(20000)     # the parser and the shrinker walk nested forms

# Refusal reasons of the native tier that are documented limits.  A refusal
# for any other reason fails the run.  Keep this list short and each entry
# explained:
#   too-large: a function whose lowering would be too large is refused
#              rather than allowed to stall the compiler (issue 12).
ALLOWED_REFUSALS = ('too-large',)
MIN_NATIVE_SHARE = 0.95      # calls-native / (calls-native + calls-vm), jit0 runs
COMPILE_MS_NOTE = 50.0       # functions compiling longer than this are listed

GC_DIVISORS = (None, None, None, None, 3, 5, 8, 13, 20, 30, 50)

REF_LIMIT = 60.0             # seconds, the first tier
MIN_LIMIT = 30.0             # seconds, every other tier at least ...
LIMIT_FACTOR = 20.0          # ... or this many times the first tier's time
REGRESSION_JIT_RUNS = 5     # runs of the saved regressions on each jit tier
SHRINK_REF_LIMIT = 10.0      # while shrinking
SHRINK_MIN_LIMIT = 10.0

KINDS = {'read-error', 'syntax-error', 'unbound-variable', 'type-error',
         'arity-error', 'overflow', 'division-by-zero', 'index-error',
         'stack-overflow', 'memory-limit', 'timeout', 'effect-error',
         'user-error', 'raised'}
ERROR_LINE = re.compile(r'error: ([^:\s]+): ')
SANITIZER_REPORT = re.compile(r'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: ')
TIER_NAME = re.compile(r'^(cek|vm|jit(\d+)?)$')
REPORT_KEYS = ('functions-compiled', 'functions-refused', 'functions-failed',
               'functions-assuming', 'functions-redefined',
               'calls-native', 'calls-vm', 'toplevel-forms')


# ------------------------------------------------------------------ tiers

def parse_tiers(text):
    """['cek', 'vm', 'jit0', ...] from 'cek,vm,jit0,...' ('jit' is jit0),
    the reference tier cek first when present."""
    tiers = []
    for t in text.split(','):
        t = t.strip()
        if not t:
            continue
        if not TIER_NAME.match(t):
            raise ValueError('unknown tier %r (cek, vm or jitN, N the threshold)' % t)
        if t == 'jit':
            t = 'jit0'
        if t not in tiers:
            tiers.append(t)
    if 'cek' in tiers:
        tiers = ['cek'] + [t for t in tiers if t != 'cek']
    return tiers


def threshold(tier):
    return int(tier[3:]) if tier.startswith('jit') else None


def tier_command(sxpool, tier, path, report=None):
    th = threshold(tier)
    if th is None:
        return [sxpool, 'eval', '--tier=' + tier, path]
    cmd = [sxpool, 'eval', '--tier=jit', '--jit-threshold=%d' % th]
    if report:
        cmd.append('--jit-report=' + report)
    return cmd + [path]


def tier_env(gc_divisor=None):
    env = dict(os.environ)
    env['SXPOOL_JIT_STRICT'] = '1'
    if gc_divisor:
        env['GC_FREE_SPACE_DIVISOR'] = str(gc_divisor)
    return env


ENV = tier_env()


def gc_divisor(seed, mode):
    """The collector's free-space divisor for a program's runs (None: the
    default).  When the collector runs changes nothing a program prints,
    but a root that native code forgets to keep is found only if a
    collection happens at the wrong moment; varying it per program makes
    that moment differ from program to program."""
    if mode == 'off':
        return None
    return random.Random('gc %d' % seed).choice(GC_DIVISORS)


# ------------------------------------------------------------------ running

class Result:
    """What one tier did with one program."""

    def __init__(self, stdout=b'', status=None, first_err='', timed_out=False,
                 seconds=0.0, limit=0.0, report=None, sanitizer=None):
        self.stdout, self.status, self.sanitizer = stdout, status, sanitizer
        self.first_err, self.timed_out = first_err, timed_out
        self.seconds, self.limit, self.report = seconds, limit, report
        m = ERROR_LINE.match(first_err)
        self.kind = m.group(1) if m else None

    def problem(self, expect_error=None):
        """A short text if this run is wrong whatever the other tiers did."""
        if self.timed_out:
            return 'timed out after %.0fs' % self.limit
        if self.sanitizer:
            return 'sanitizer report: %s' % self.sanitizer[:200]
        if self.status < 0:
            return 'killed by signal %d%s' % (-self.status, ' (after printing %d bytes)' % len(self.stdout))
        if self.status not in (0, 1):
            return 'exit status %d (stderr: %s)' % (self.status, self.first_err[:160])
        if self.status == 1 and self.kind is None:
            return 'exit status 1 without an "error: KIND: " line (stderr: %s)' % self.first_err[:160]
        if self.kind is not None and self.kind not in KINDS:
            return 'unknown error kind: %s' % self.first_err[:160]
        if expect_error is not None and self.status != (1 if expect_error else 0):
            return 'exit status %d, expected %d (stderr: %s)' % (
                self.status, 1 if expect_error else 0, self.first_err[:160])
        return None

    def signature(self):
        """The class of problem, for keeping the same failure while shrinking."""
        if self.timed_out:
            return 'timeout'
        if self.sanitizer:
            return 'sanitizer'
        if self.status < 0 or self.status not in (0, 1):
            return 'crash'
        if self.status == 1 and self.kind is None:
            return 'no-error-line'
        if self.kind not in KINDS:
            return 'kind:%s' % self.kind
        return 'status:%d:%s' % (self.status, self.kind)

    def describe(self):
        if self.timed_out:
            return 'timeout (limit %.0fs)' % self.limit
        return 'status %s in %.2fs%s' % (self.status, self.seconds,
                                          ', ' + self.first_err[:120] if self.first_err else '')


CORE_DIR = None   # --cores: where the core dumps of crashed runs go


def keep_core(sxpool, tier, path, rundir, status):
    """Move a crashed run's core dump (the kernel's core_pattern must be a
    plain file name) to CORE_DIR with a backtrace of every thread beside
    it; return its path, or None."""
    cores = [f for f in os.listdir(rundir) if f.startswith('core')]
    if status >= 0 or not cores:
        return None
    os.makedirs(CORE_DIR, exist_ok=True)
    base = os.path.join(CORE_DIR, '%s-%s-%d' % (os.path.basename(path)[:-3], tier, int(time.time() * 1000)))
    shutil.move(os.path.join(rundir, cores[0]), base + '.core')
    shutil.copy(path, base + '.sx')
    with open(base + '.bt', 'w') as f:
        subprocess.run(['gdb', '-batch', '-ex', 'thread apply all bt 30', sxpool, base + '.core'],
                       stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    return base + '.core'


def run_tier(sxpool, tier, path, limit, report=None, env=None):
    if report and os.path.exists(report):
        os.unlink(report)
    rundir = tempfile.mkdtemp(dir=os.path.dirname(path)) if CORE_DIR else None
    start = time.monotonic()
    try:
        p = subprocess.run(tier_command(sxpool, tier, path, report), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit,
                           env=env or ENV, cwd=rundir)
    except subprocess.TimeoutExpired as e:
        if rundir:
            shutil.rmtree(rundir, ignore_errors=True)
        return Result(e.stdout or b'', None, '', timed_out=True, seconds=limit, limit=limit)
    took = time.monotonic() - start
    core = None
    if rundir:
        core = keep_core(sxpool, tier, path, rundir, p.returncode)
        shutil.rmtree(rundir, ignore_errors=True)
        if core:
            print('  core dump of %s on %s: %s (backtrace in .bt)' % (os.path.basename(path), tier, core),
                  flush=True)
    err = p.stderr.decode('utf-8', 'replace')
    first = err.split('\n', 1)[0]
    m = SANITIZER_REPORT.search(err)
    if m:   # a sanitizer report, even one the program survived
        line = err[err.rfind('\n', 0, m.start()) + 1:].split('\n', 1)[0]
        return Result(p.stdout, p.returncode, first, seconds=took, limit=limit, sanitizer=line)
    rep = None
    if report:
        rep = read_report(report) if os.path.exists(report) else None
    return Result(p.stdout, p.returncode, first, seconds=took, limit=limit, report=rep)


def run_all(sxpool, tiers, text, workdir, name, shrinking=False, coverage=False, env=None):
    """{tier: Result}: the first tier, then the others with a limit relative
    to its time."""
    path = os.path.join(workdir, name + '.sx')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    ref_limit, floor = (SHRINK_REF_LIMIT, SHRINK_MIN_LIMIT) if shrinking else (REF_LIMIT, MIN_LIMIT)
    out = {}
    try:
        for i, t in enumerate(tiers):
            limit = ref_limit if i == 0 else max(floor, LIMIT_FACTOR * out[tiers[0]].seconds)
            report = None
            if coverage and t.startswith('jit'):
                report = os.path.join(workdir, '%s.%s.report' % (name, t))
            out[t] = run_tier(sxpool, t, path, limit, report, env)
            if report and os.path.exists(report):
                os.unlink(report)
    finally:
        os.unlink(path)
    return out


def judge(results, tiers, expect_error=None):
    """(signature, description) of the failure, or None if all is well."""
    for t in tiers:
        why = results[t].problem()
        if why:
            return ('tier', t, results[t].signature()), '%s: %s' % (t, why)
    ref = results[tiers[0]]
    for t in tiers[1:]:
        r = results[t]
        diffs = []
        if r.stdout != ref.stdout:
            diffs.append('stdout differs')
        if r.status != ref.status:
            diffs.append('exit status %s vs %s' % (ref.status, r.status))
        if r.kind != ref.kind:
            diffs.append('error kind %s vs %s' % (ref.kind, r.kind))
        if diffs:
            return ('mismatch', t), '%s vs %s: %s' % (tiers[0], t, ', '.join(diffs))
    if expect_error is not None:
        for t in tiers:
            why = results[t].problem(expect_error)
            if why:
                return ('unexpected', t), '%s: %s' % (t, why)
    return None


def failing_tier(sig):
    """The tier a failure signature is about."""
    return sig[1]


def probe(sxpool, tier, workdir, coverage):
    """None if the tier runs a trivial program (and, with coverage, writes
    its report), else why not."""
    text = '(define (probe-f x) (+ x 1))\n(print (probe-f 2))\n'
    r = run_all(sxpool, [tier], text, workdir, 'probe-' + tier, coverage=coverage)[tier]
    if r.timed_out:
        return 'probe timed out'
    if r.status != 0 or r.stdout != b'3\n':
        return 'exit status %s: %s' % (r.status, r.first_err[:160])
    if coverage and tier.startswith('jit') and r.report is None:
        return 'no coverage report written by --jit-report (run with --no-coverage to compare outputs only)'
    if coverage and isinstance(r.report, str):
        return 'unreadable coverage report: %s' % r.report
    return None


def check_tiers(sxpool, tiers, workdir, coverage):
    """The tiers that fail their probe, with why (each one a failure)."""
    bad = []
    for t in tiers:
        why = probe(sxpool, t, workdir, coverage and t.startswith('jit'))
        if why is not None:
            bad.append((t, why))
    return bad


# ---------------------------------------------------------------- coverage

def read_report(path):
    """A parsed coverage report: dict with the REPORT_KEYS counts,
    'refused' [(name, hash, reason)] and 'compile' [(name, hash, ms)]; or a
    string saying what is wrong with the file."""
    rep = {'refused': [], 'compile': []}
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = f.read().splitlines()
    except OSError as e:
        return 'cannot read %s: %s' % (path, e)
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        try:
            if key in REPORT_KEYS and len(parts) == 2:
                rep[key] = int(parts[1])
            elif key == 'refused' and len(parts) >= 4:
                rep['refused'].append((parts[1], parts[2], ' '.join(parts[3:])))
            elif key == 'compile-ms' and len(parts) == 4:
                rep['compile'].append((parts[1], parts[2], float(parts[3])))
            else:
                continue   # a key this tool does not know yet
        except ValueError:
            return '%s:%d: bad line %r' % (path, n, line)
    missing = [k for k in REPORT_KEYS if k not in rep]
    if missing:
        return '%s: no %s line' % (path, ', '.join(missing))
    return rep


class Coverage:
    """Totals over the jit runs of a session; jit0 runs are checked."""

    def __init__(self):
        self.totals = {}          # tier -> {key: sum}
        self.counted = {}         # tier -> programs with at least one non-top-level call
        self.refusals = {}        # reason -> [(seed, name)]
        self.compile = []         # (ms, seed, name, hash), jit0
        self.problems = []        # (seed, text)
        self.redefining = {}      # tier -> programs that write globals functions assume

    def add(self, seed, tier, rep, redefines=False):
        if rep is None:
            self.problems.append((seed, '%s: no coverage report' % tier))
            return
        if isinstance(rep, str):
            self.problems.append((seed, '%s: %s' % (tier, rep)))
            return
        tot = self.totals.setdefault(tier, dict.fromkeys(REPORT_KEYS, 0))
        calls = rep['calls-native'] + rep['calls-vm']
        for k in REPORT_KEYS:
            if k in ('calls-native', 'calls-vm') and calls == 0:
                continue
            tot[k] += rep[k]
        if calls:
            self.counted[tier] = self.counted.get(tier, 0) + 1
        if redefines:
            self.redefining[tier] = self.redefining.get(tier, 0) + 1
        if tier != 'jit0':
            return
        for name, h, reason in rep['refused']:
            self.refusals.setdefault(reason, []).append((seed, name))
        for name, h, ms in rep['compile']:
            self.compile.append((ms, seed, name, h))
        if rep['functions-failed']:
            self.problems.append((seed, 'jit0: %d function(s) failed to compile' % rep['functions-failed']))

    def verdict(self, max_compile_ms=None, out=sys.stdout):
        """Print the figures; return a list of failure texts."""
        fails = []
        for tier in sorted(self.totals, key=lambda t: threshold(t)):
            tot = self.totals[tier]
            calls = tot['calls-native'] + tot['calls-vm']
            share = tot['calls-native'] / calls if calls else 0.0
            print('coverage %s: %d compiled, %d refused, %d failed, %d top-level forms; '
                  'calls %d native / %d vm (%.1f%% native over %d programs with calls); '
                  '%d assuming globals, %d dropped by a redefinition (%d programs redefine)' % (
                      tier, tot['functions-compiled'], tot['functions-refused'], tot['functions-failed'],
                      tot['toplevel-forms'], tot['calls-native'], tot['calls-vm'], 100 * share,
                      self.counted.get(tier, 0), tot['functions-assuming'], tot['functions-redefined'],
                      self.redefining.get(tier, 0)), file=out)
            if tier == 'jit0' and calls and share < MIN_NATIVE_SHARE:
                fails.append('jit0 ran %.1f%% of its calls natively, below %.0f%%' % (
                    100 * share, 100 * MIN_NATIVE_SHARE))
            if tier == 'jit0' and not calls and self.counted.get(tier, 0) == 0:
                fails.append('jit0 reported no calls at all (native code never ran)')
            if tier == 'jit0' and self.redefining.get(tier) and not tot['functions-redefined']:
                fails.append('%d program(s) write globals that closed functions assume, but jit0 '
                             'dropped no native code (functions-redefined 0)' % self.redefining[tier])
        for reason in sorted(self.refusals):
            seen = self.refusals[reason]
            ok = reason in ALLOWED_REFUSALS
            print('refused (%s): %d function(s) for "%s", e.g. %s' % (
                'documented limit' if ok else 'NOT ALLOWED', len(seen), reason,
                ', '.join('%s in seed %d' % (n, s) for s, n in seen[:5])), file=out)
            if not ok:
                fails.append('%d function(s) refused for "%s", not a documented limit (seeds %s)' % (
                    len(seen), reason, ' '.join(str(s) for s in sorted({s for s, _ in seen})[:10])))
        for seed, text in self.problems[:20]:
            fails.append('seed %d: %s' % (seed, text))
        if len(self.problems) > 20:
            fails.append('... and %d more coverage problems' % (len(self.problems) - 20))
        if self.compile:
            ms = sorted(c[0] for c in self.compile)
            p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
            print('compile time per function (jit0, %d functions): median %.1f ms, p99 %.1f ms, max %.1f ms' % (
                len(ms), statistics.median(ms), p99, ms[-1]), file=out)
            slow = sorted((c for c in self.compile if c[0] > COMPILE_MS_NOTE), reverse=True)
            for c in slow[:30]:
                print('  over %.0f ms: %s (%s) %.1f ms, seed %d' % (COMPILE_MS_NOTE, c[2], c[3], c[0], c[1]),
                      file=out)
            if len(slow) > 30:
                print('  ... and %d more over %.0f ms' % (len(slow) - 30, COMPILE_MS_NOTE), file=out)
            if max_compile_ms is not None:
                over = [c for c in self.compile if c[0] > max_compile_ms]
                if over:
                    fails.append('%d function(s) took more than %g ms to compile (worst %s, %.1f ms, seed %d)' % (
                        len(over), max_compile_ms, max(over)[2], max(over)[0], max(over)[1]))
        elif 'jit0' in self.totals:
            print('compile time per function: no compile-ms lines in the reports', file=out)
        return fails


# ---------------------------------------------------------------- shrinking

class Node:
    """A parenthesised form: open is '(', '#(' or '{'; items are Nodes,
    Quotes or atom strings."""

    def __init__(self, open_, items):
        self.open, self.items = open_, items


class Quote:
    """'x `x ,x ,@x"""

    def __init__(self, prefix, item):
        self.prefix, self.item = prefix, item


def show(x):
    """Source text of a datum (without recursion: forms nest deeply)."""
    out, todo = [], [x]
    while todo:
        x = todo.pop()
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, Quote):
            todo += [x.item, x.prefix]
        else:
            todo.append('}' if x.open == '{' else ')')
            for k in range(len(x.items) - 1, -1, -1):
                todo.append(x.items[k])
                if k:
                    todo.append(' ')
            todo.append(x.open)
    return ''.join(out)


def parse(text):
    """The top-level forms of an SX source (comments dropped)."""
    pos, n = 0, len(text)
    delims = set('()[]{}";\'`,') | set(' \t\r\n')

    def skip():
        nonlocal pos
        while pos < n:
            if text[pos] in ' \t\r\n':
                pos += 1
            elif text[pos] == ';':
                while pos < n and text[pos] != '\n':
                    pos += 1
            else:
                break

    def datum():
        nonlocal pos
        skip()
        c = text[pos]
        if c in '({' or text.startswith('#(', pos):
            open_ = '#(' if c == '#' else c
            pos += len(open_)
            items = []
            while True:
                skip()
                if text[pos] in ')}':
                    pos += 1
                    return Node(open_, items)
                items.append(datum())
        if c in '\'`,':
            prefix = ',@' if text.startswith(',@', pos) else c
            pos += len(prefix)
            return Quote(prefix, datum())
        start = pos
        if c == '"':
            pos += 1
            while text[pos] != '"':
                pos += 2 if text[pos] == '\\' else 1
            pos += 1
            return text[start:pos]
        if text.startswith('#\\', pos):
            pos += 3
            if text[pos - 1].isalnum():
                while pos < n and text[pos] not in delims:
                    pos += 1
            return text[start:pos]
        while pos < n and text[pos] not in delims:
            pos += 1
        if pos == start:
            raise ValueError('unexpected %r at %d' % (text[pos], pos))
        return text[start:pos]

    forms = []
    skip()
    while pos < n:
        forms.append(datum())
        skip()
    return forms


def render(forms):
    return ''.join(show(f) + '\n' for f in forms)


class Shrinker:
    """Greedy reduction of a program while `still_fails(text)` holds."""

    def __init__(self, still_fails, deadline):
        self.still_fails, self.deadline = still_fails, deadline
        self.tries = 0

    def out_of_time(self):
        return time.time() > self.deadline

    def check(self, forms):
        self.tries += 1
        return self.still_fails(render(forms))

    def forms(self, forms):
        """ddmin over the list of top-level forms."""
        chunk = max(1, len(forms) // 2)
        while chunk >= 1 and not self.out_of_time():
            i, changed = 0, False
            while i < len(forms) and not self.out_of_time():
                candidate = forms[:i] + forms[i + chunk:]
                if candidate and self.check(candidate):
                    forms, changed = candidate, True
                else:
                    i += chunk
            if not changed:
                chunk //= 2
        return forms

    def subexpressions(self, forms):
        """Replace compound forms by their parts, drop elements of lists."""
        root = Node('', forms)
        progress = True
        while progress and not self.out_of_time():
            progress = False
            i = 0
            while not self.out_of_time():
                places = self.places(root)
                if i >= len(places):
                    break
                if self.reduce_at(root, *places[i]):
                    progress = True
                else:
                    i += 1
        return root.items

    def places(self, root):
        """(container, index) of every compound form, outermost first."""
        out = []

        def walk(node):
            items = node.items if isinstance(node, Node) else None
            if items is None:
                if isinstance(node.item, (Node, Quote)):
                    out.append((node, None))
                    walk(node.item)
                return
            for k, x in enumerate(items):
                if isinstance(x, (Node, Quote)):
                    out.append((node, k))
                    walk(x)
        walk(root)
        return out

    def reduce_at(self, root, container, k):
        def get():
            return container.item if k is None else container.items[k]

        def put(x):
            if k is None:
                container.item = x
            else:
                container.items[k] = x
        old = get()
        candidates = []
        if isinstance(old, Node):
            candidates += [x for x in old.items]
            for j in range(len(old.items)):
                candidates.append(Node(old.open, old.items[:j] + old.items[j + 1:]))
        else:
            candidates.append(old.item)
        if container is root and k is not None:
            candidates = [c for c in candidates if not isinstance(c, str)]
        for c in candidates:
            if self.out_of_time():
                break
            put(c)
            if self.check(root.items):
                return True
            put(old)
        return False


def shrink(text, still_fails, seconds):
    s = Shrinker(still_fails, time.time() + seconds)
    forms = parse(text)
    forms = s.forms(forms)
    forms = s.subexpressions(forms)
    forms = s.forms(forms)
    return render(forms), s.tries


# ------------------------------------------------------------ saving

def next_number(out_dir):
    nums = [int(m.group(1)) for f in os.listdir(out_dir)
            for m in [re.match(r'(\d{4})-', f)] if m]
    return max(nums, default=0) + 1


def save_program(sxpool, out_dir, seed, text, header_lines, ref_tier, workdir):
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, '%04d-%d' % (next_number(out_dir), seed))
    header = ''.join('; %s\n' % line.replace('\n', ' ') for line in header_lines)
    with open(base + '.sx', 'w', encoding='utf-8') as f:
        f.write(header + text)
    ref = run_all(sxpool, [ref_tier], header + text, workdir, 'expected')[ref_tier]
    with open(base + '.out', 'wb') as f:
        f.write(ref.stdout)
    if ref.status == 1 and ref.kind:
        with open(base + '.err', 'w', encoding='utf-8') as f:
            f.write('error: %s: ' % ref.kind)
    return os.path.abspath(base + '.sx')


SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))


def in_source_tree(path):
    """Whether path is in the checkout, outside its build* directories."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(SOURCE_ROOT))
    if rel == '.' or rel.startswith('..'):
        return rel == '.'
    return not rel.split(os.sep)[0].startswith('build')


def default_save_dir():
    here = os.path.join(os.getcwd(), 'diff-saved')
    if in_source_tree(here):
        return os.path.join(tempfile.gettempdir(), 'sxdiff-saved-%d' % os.getuid())
    return here


# ------------------------------------------------------------ regressions

def run_regressions(args, workdir):
    out_dir = args.regressions_dir
    files = sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir)
                   if f.endswith('.sx')) if os.path.isdir(out_dir) else []
    if not files:
        print('diff.py: no saved regressions in %s (the test expects at least one)' % out_dir)
        return 1
    if not os.path.isfile(args.runner):
        print('diff.py: no conformance runner at %s' % args.runner)
        return 1
    bad = check_tiers(args.sxpool, args.tiers, workdir, False)
    for t, why in bad:
        print('FAIL tier %s is not available: %s' % (t, why))
    failed = bool(bad)
    for t in args.tiers:
        if any(t == b for b, _ in bad):
            continue
        th = threshold(t)
        flags = ['--tier=' + t] if th is None else ['--tier=jit', '--jit-threshold=%d' % th]
        runs = REGRESSION_JIT_RUNS if th is not None else 1
        for i in range(runs):
            print('== tier %s, run %d of %d' % (t, i + 1, runs), flush=True)
            p = subprocess.run(['bash', args.runner] + flags + [args.sxpool] + files,
                               stdin=subprocess.DEVNULL, env=ENV)
            if p.returncode != 0:
                failed = True
                print('FAIL tier %s, run %d of %d (above)' % (t, i + 1, runs), flush=True)
    return 1 if failed else 0


# ------------------------------------------------------------------- main

def program_env(args, seed):
    return tier_env(gc_divisor(seed, args.gc_vary))


def check_program(args, tiers, seed, workdir):
    prog = gen.generate(seed, args.shape)
    results = run_all(args.sxpool, tiers, prog.text, workdir, 'p%d' % seed, coverage=args.coverage,
                      env=program_env(args, seed))
    return seed, prog, results, judge(results, tiers, prog.expect_error)


def reproduce(args, tiers, seed, text, sig, workdir, times):
    """How many of `times` runs of [first tier, failing tier] show sig."""
    pair = [tiers[0]] + ([failing_tier(sig)] if failing_tier(sig) != tiers[0] else [])
    n = 0
    for _ in range(times):
        v = judge(run_all(args.sxpool, pair, text, workdir, 'repro', env=program_env(args, seed)), pair)
        n += v is not None and v[0] == sig
    return n


def shrink_failure(args, tiers, seed, prog, results, verdict, workdir):
    sig, why = verdict
    print('shrinking seed %d (%s):' % (seed, why), flush=True)
    text, note = prog.text, ''
    if sig[0] == 'unexpected':
        note = 'not shrunk: the failure is about the whole program'
    else:
        hits = reproduce(args, tiers, seed, text, sig, workdir, 3)
        print('  the failure happened again in %d of 3 runs' % hits, flush=True)
        if hits == 0:
            note = 'not shrunk: did not happen again in 3 runs'
        else:
            pair = [tiers[0]] + ([failing_tier(sig)] if failing_tier(sig) != tiers[0] else [])
            retries = 1 if hits == 3 else 3

            def still_fails(candidate):
                for _ in range(retries):
                    v = judge(run_all(args.sxpool, pair, candidate, workdir, 'shrink', shrinking=True,
                                      env=program_env(args, seed)), pair)
                    if v is not None and v[0] == sig:
                        return True
                return False
            before = text.count('\n')
            text, tries = shrink(text, still_fails, args.shrink_seconds)
            after = reproduce(args, tiers, seed, text, sig, workdir, 5)
            note = ('shrunk from %d to %d lines in %d runs; the failure happened in %d of 3 runs of the '
                    'original and %d of 5 runs of the shrunk program') % (
                        before, text.count('\n'), tries, hits, after)
    print('  ' + note)
    div = gc_divisor(seed, args.gc_vary)
    header = ['Differential failure, seed %d (shape %s, tiers %s): %s' % (seed, args.shape, ','.join(tiers), why),
              'Run with GC_FREE_SPACE_DIVISOR=%s in the environment.' % div if div else
              'Run with the collector\'s default settings.',
              '%s; `gen.py --shape=%s %d` prints the original.' % (note, args.shape, seed),
              'Replay: diff.py SXPOOL --tiers=%s --shape=%s --seed=%d --count=1' % (','.join(tiers), args.shape, seed)]
    path = save_program(args.sxpool, args.save_dir, seed, text, header, tiers[0], workdir)
    print('  saved %s (with its .out%s, what %s printed)' % (
        path, ', .err' if os.path.exists(path[:-3] + '.err') else '', tiers[0]), flush=True)


def main(argv):
    ap = argparse.ArgumentParser(description='Run random SX programs on several tiers and compare.')
    ap.add_argument('sxpool', nargs='?')
    ap.add_argument('--tiers', default='cek,vm,jit0,jit1,jit10,jit1000')
    ap.add_argument('--count', type=int, default=None, help='programs to run (default 100)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--time-seed', action='store_true', help='take the seed from the clock')
    ap.add_argument('--seconds', type=float, default=None, help='stop starting programs after this long')
    ap.add_argument('--shape', default='mixed', choices=gen.SHAPES)
    ap.add_argument('--save-dir', default=None,
                    help='where shrunk failures are written (default ./diff-saved, or a temporary '
                    'directory when the current directory is in the source tree)')
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--shrink-seconds', type=float, default=120.0)
    ap.add_argument('--shrink-max', type=int, default=3, help='kinds of failure to shrink')
    ap.add_argument('--no-coverage', dest='coverage', action='store_false',
                    help='do not ask the jit tiers for --jit-report')
    ap.add_argument('--max-compile-ms', type=float, default=None)
    ap.add_argument('--cores', action='store_true',
                    help='keep core dumps of crashed runs, with backtraces, under SAVE_DIR/cores')
    ap.add_argument('--gc-vary', choices=('auto', 'off'), default='auto',
                    help='vary GC_FREE_SPACE_DIVISOR per program (auto) or not')
    ap.add_argument('--regressions', action='store_true', help='run the saved regressions instead')
    ap.add_argument('--regressions-dir', default=os.path.join(HERE, 'regressions'))
    ap.add_argument('--runner', default=os.path.join(HERE, '..', '..', '..', 'shared', 'conformance', 'run.sh'))
    ap.add_argument('--check-report', nargs='+', metavar='FILE', help='parse coverage reports, print totals')
    args = ap.parse_args(argv)
    if args.check_report:
        cov = Coverage()
        for i, f in enumerate(args.check_report):
            cov.add(i, 'jit0', read_report(f))
        fails = cov.verdict(args.max_compile_ms)
        for f in fails:
            print('FAIL coverage: ' + f)
        return 1 if fails else 0
    if not args.sxpool:
        ap.error('SXPOOL is required')
    try:
        args.tiers = parse_tiers(args.tiers)
    except ValueError as e:
        ap.error(str(e))
    if not args.tiers:
        ap.error('no tiers')
    args.sxpool = os.path.abspath(args.sxpool)
    if args.save_dir is None:
        args.save_dir = default_save_dir()
    args.save_dir = os.path.abspath(args.save_dir)
    if in_source_tree(args.save_dir):
        print('diff.py: --save-dir %s is in the source tree; give a build or temporary directory'
              % args.save_dir, file=sys.stderr)
        return 2
    if not os.access(args.sxpool, os.X_OK):
        print('diff.py: %s is not executable' % args.sxpool, file=sys.stderr)
        return 2
    if args.cores:
        global CORE_DIR
        import resource
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        CORE_DIR = os.path.join(args.save_dir, 'cores')

    workdir = tempfile.mkdtemp(prefix='sxdiff.')
    try:
        if args.regressions:
            return run_regressions(args, workdir)
        if args.time_seed:
            args.seed = int(time.time() * 1000) % 1000000000
        print('seed %d' % args.seed, flush=True)
        count = args.count if args.count is not None else (None if args.seconds else 100)
        bad = check_tiers(args.sxpool, args.tiers, workdir, args.coverage)
        if bad:
            for t, why in bad:
                print('FAIL tier %s is not available: %s' % (t, why))
            print('diff.py: every tier asked for must run (--tiers=%s)' % ','.join(args.tiers))
            return 1
        print('tiers: %s (shape %s, coverage %s)' % (','.join(args.tiers), args.shape,
                                                    'checked' if args.coverage else 'not checked'), flush=True)
        return run_programs(args, args.tiers, count, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_programs(args, tiers, count, workdir):
    start = time.time()
    deadline = start + args.seconds if args.seconds else None
    ran, failures = 0, []
    cov = Coverage()
    per_tier = dict.fromkeys(tiers, 0.0)
    next_seed = args.seed
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending = set()
        while True:
            while (len(pending) < 2 * args.jobs
                   and (count is None or next_seed - args.seed < count)
                   and (deadline is None or time.time() < deadline)):
                pending.add(pool.submit(check_program, args, tiers, next_seed, workdir))
                next_seed += 1
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                seed, prog, results, verdict = fut.result()
                ran += 1
                for t in tiers:
                    per_tier[t] += results[t].seconds
                    if args.coverage and t.startswith('jit') and verdict is None:
                        cov.add(seed, t, results[t].report, getattr(prog, 'redefines', False))
                if verdict:
                    failures.append((seed, prog, results, verdict))
                    div = gc_divisor(seed, args.gc_vary)
                    print('FAIL seed %d: %s%s' % (seed, verdict[1], ' (GC_FREE_SPACE_DIVISOR=%d)' % div if div else ''),
                          flush=True)
                    for t in tiers:
                        print('  %s: %s' % (t, results[t].describe()), flush=True)
    elapsed = time.time() - start
    last = args.seed + ran - 1
    print('%d programs run in %.1fs (tiers %s, shape %s, seeds %d..%d); seconds per tier: %s' % (
        ran, elapsed, ','.join(tiers), args.shape, args.seed, last,
        ' '.join('%s %.1f' % (t, per_tier[t]) for t in tiers)), flush=True)
    cov_fails = cov.verdict(args.max_compile_ms) if args.coverage else []
    for f in cov_fails:
        print('FAIL coverage: ' + f)
    if failures:
        failures.sort(key=lambda f: f[0])
        kinds = {}
        for f in failures:
            kinds.setdefault(f[3][0], []).append(f[0])
        print('%d of %d programs failed, %d kind(s) of failure:' % (len(failures), ran, len(kinds)))
        for sig, seeds in kinds.items():
            print('  %s: seeds %s%s' % (' '.join(str(x) for x in sig), ' '.join(str(s) for s in seeds[:20]),
                                       ' ...' if len(seeds) > 20 else ''))
        shrunk = set()
        for seed, prog, results, verdict in failures:
            if verdict[0] in shrunk or len(shrunk) >= args.shrink_max:
                continue
            shrunk.add(verdict[0])
            shrink_failure(args, tiers, seed, prog, results, verdict, workdir)
    if failures or cov_fails:
        return 1
    print('no failures')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
