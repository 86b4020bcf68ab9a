#!/usr/bin/env python3
"""Differential testing of sxpool's tiers with random SX programs.

    diff.py SXPOOL [--tiers=cek,vm] [--count=N] [--seed=S] [--time-seed]
            [--seconds=T] [--out=DIR] [--jobs=J] [--shrink-seconds=T]
    diff.py SXPOOL --regressions [--tiers=cek,vm] [--runner=RUN.SH] [--out=DIR]

Program i of a run is `gen.generate(S + i)`, so any single program can be
replayed with `--seed=SEED --count=1`.  `--time-seed` takes S from the
clock and prints it first.  Each program is written to a temporary file and
run as `SXPOOL eval --tier=T FILE` for every tier (stdin /dev/null, 10 s
limit; the jit tier also gets --jit-threshold=0 so everything is compiled).

Tiers other than cek are probed first with a one-line program; a tier that
does not run it (the VM prints "not available" and exits 2 until it exists)
is dropped with a note, so the tool is useful with the CEK alone.

What counts as a failure:
  - for every tier alone: a timeout, death by a signal, an exit status
    other than 0 or 1, status 1 without an "error: KIND: " first line on
    stderr, an error kind SX.md does not list (internal-error, ...), or an
    exit status other than the one the generator expects (1 exactly when
    the program ends with its one deliberate uncaught error);
  - across tiers: any difference in stdout, exit status or error kind.

On the first failure the program is shrunk: delta debugging removes
top-level forms, then each compound subexpression is replaced by one of its
children or loses an element, keeping every change after which the same
failure remains (the same tier failing the same way, or the tiers still
disagreeing).  The result is saved as DIR/NNNN-SEED.sx with the cek tier's
stdout as NNNN-SEED.out and, when cek ends with an error, its
"error: KIND: " prefix as NNNN-SEED.err: the conformance suite's format, so
`--regressions` runs them all through the suite's run.sh for each available
tier.  DIR defaults to the regressions/ directory next to this script.

Exit status: 0 when every program passed, 1 after a failure, 2 on bad use;
`--regressions` exits 77 (ctest's skip code here) when there is nothing saved.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # keep the source tree clean
import gen  # noqa: E402

sys.setrecursionlimit(20000)     # the parser and the shrinker walk nested forms
RUN_TIMEOUT = 10.0
KINDS = {'read-error', 'syntax-error', 'unbound-variable', 'type-error',
         'arity-error', 'overflow', 'division-by-zero', 'index-error',
         'stack-overflow', 'memory-limit', 'timeout', 'effect-error',
         'user-error', 'raised'}
ERROR_LINE = re.compile(r'error: ([^:\s]+): ')
SKIP = 77


# ------------------------------------------------------------------ running

class Result:
    """What one tier did with one program."""

    def __init__(self, stdout=b'', status=None, first_err='', timed_out=False):
        self.stdout, self.status = stdout, status
        self.first_err, self.timed_out = first_err, timed_out
        m = ERROR_LINE.match(first_err)
        self.kind = m.group(1) if m else None

    def problem(self, expect_error=None):
        """A short text if this run is wrong whatever the other tiers did."""
        if self.timed_out:
            return 'timed out after %gs' % RUN_TIMEOUT
        if self.status < 0:
            return 'killed by signal %d' % -self.status
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
        if self.status < 0 or self.status not in (0, 1):
            return 'crash'
        if self.status == 1 and self.kind is None:
            return 'no-error-line'
        if self.kind not in KINDS:
            return 'kind:%s' % self.kind
        return 'status:%d:%s' % (self.status, self.kind)

    def describe(self):
        if self.timed_out:
            return 'timeout'
        return 'status %s%s' % (self.status, ', ' + self.first_err[:120] if self.first_err else '')


def tier_command(sxpool, tier, path):
    cmd = [sxpool, 'eval', '--tier=' + tier]
    if tier == 'jit':
        cmd.append('--jit-threshold=0')
    return cmd + [path]


def run_tier(sxpool, tier, path, timeout=RUN_TIMEOUT):
    try:
        p = subprocess.run(tier_command(sxpool, tier, path), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return Result(e.stdout or b'', None, '', timed_out=True)
    first = p.stderr.decode('utf-8', 'replace').split('\n', 1)[0]
    return Result(p.stdout, p.returncode, first)


def run_all(sxpool, tiers, text, workdir, name, timeout=RUN_TIMEOUT):
    path = os.path.join(workdir, name + '.sx')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    try:
        return {t: run_tier(sxpool, t, path, timeout) for t in tiers}
    finally:
        os.unlink(path)


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
            return ('mismatch',), '%s vs %s: %s' % (tiers[0], t, ', '.join(diffs))
    if expect_error is not None:
        for t in tiers:
            why = results[t].problem(expect_error)
            if why:
                return ('unexpected', t), '%s: %s' % (t, why)
    return None


def probe(sxpool, tier, workdir):
    """None if the tier runs a trivial program, else why not."""
    r = run_all(sxpool, [tier], '(print (+ 1 2))\n', workdir, 'probe-' + tier)[tier]
    if r.timed_out:
        return 'probe timed out'
    if r.status == 0 and r.stdout == b'3\n':
        return None
    return 'exit status %s: %s' % (r.status, r.first_err[:160])


def available_tiers(sxpool, wanted, workdir):
    tiers = []
    for t in wanted:
        why = probe(sxpool, t, workdir)
        if why is None:
            tiers.append(t)
        else:
            print('note: tier %s is not available (%s); running without it' % (t, why), flush=True)
    return tiers


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


# ------------------------------------------------------------ regressions

def next_number(out_dir):
    nums = [int(m.group(1)) for f in os.listdir(out_dir)
            for m in [re.match(r'(\d{4})-', f)] if m]
    return max(nums, default=0) + 1


def save_regression(sxpool, out_dir, seed, text, why, tiers, workdir):
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, '%04d-%d' % (next_number(out_dir), seed))
    header = ('; Differential regression, seed %d (tiers %s): %s\n'
              '; Shrunk from `gen.py %d`; %s.out/.err are what the cek tier printed.\n') % (
                  seed, ','.join(tiers), why.replace('\n', ' '), seed, os.path.basename(base))
    with open(base + '.sx', 'w', encoding='utf-8') as f:
        f.write(header + text)
    ref = run_all(sxpool, ['cek'], header + text, workdir, 'expected')['cek']
    with open(base + '.out', 'wb') as f:
        f.write(ref.stdout)
    if ref.status == 1 and ref.kind:
        with open(base + '.err', 'w', encoding='utf-8') as f:
            f.write('error: %s: ' % ref.kind)
    return base + '.sx'


def run_regressions(args, workdir):
    out_dir = args.out
    files = sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir)
                   if f.endswith('.sx')) if os.path.isdir(out_dir) else []
    if not files:
        print('no saved regressions in %s' % out_dir)
        return SKIP
    if not os.path.isfile(args.runner):
        print('diff.py: no conformance runner at %s' % args.runner, file=sys.stderr)
        return 2
    tiers = available_tiers(args.sxpool, args.tiers, workdir)
    failed = False
    for t in tiers:
        p = subprocess.run(['bash', args.runner, '--tier=' + t, args.sxpool] + files,
                           stdin=subprocess.DEVNULL)
        failed = failed or p.returncode != 0
    return 1 if failed else 0


# ------------------------------------------------------------------- main

def check_program(sxpool, tiers, seed, workdir):
    prog = gen.generate(seed)
    results = run_all(sxpool, tiers, prog.text, workdir, 'p%d' % seed)
    return seed, prog, results, judge(results, tiers, prog.expect_error)


def report_failure(args, tiers, seed, prog, results, verdict, workdir):
    sig, why = verdict
    print('FAIL seed %d: %s' % (seed, why), flush=True)
    for t in tiers:
        print('  %s: %s' % (t, results[t].describe()))
    text = prog.text
    if sig[0] == 'unexpected':
        print('  (not shrunk: the failure is about the whole program)')
    else:
        def still_fails(candidate):
            v = judge(run_all(args.sxpool, tiers, candidate, workdir, 'shrink'), tiers)
            return v is not None and v[0] == sig
        before = text.count('\n')
        text, tries = shrink(text, still_fails, args.shrink_seconds)
        print('  shrunk from %d to %d lines in %d runs' % (before, text.count('\n'), tries))
    path = save_regression(args.sxpool, args.out, seed, text, why, tiers, workdir)
    print('  saved %s (and its .out%s)' % (os.path.relpath(path), ', .err' if os.path.exists(
        path[:-3] + '.err') else ''))
    print('  replay: %s %s --tiers=%s --seed=%d --count=1' % (
        sys.argv[0], args.sxpool, ','.join(tiers), seed))


def main(argv):
    ap = argparse.ArgumentParser(description='Run random SX programs on several tiers and compare.')
    ap.add_argument('sxpool')
    ap.add_argument('--tiers', default='cek,vm')
    ap.add_argument('--count', type=int, default=None, help='programs to run (default 100)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--time-seed', action='store_true', help='take the seed from the clock')
    ap.add_argument('--seconds', type=float, default=None, help='stop starting programs after this long')
    ap.add_argument('--out', default=os.path.join(HERE, 'regressions'))
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--shrink-seconds', type=float, default=120.0)
    ap.add_argument('--regressions', action='store_true', help='run the saved regressions instead')
    ap.add_argument('--runner', default=os.path.join(HERE, '..', '..', '..', 'shared', 'conformance', 'run.sh'))
    args = ap.parse_args(argv)
    args.sxpool = os.path.abspath(args.sxpool)
    args.tiers = [t for t in args.tiers.split(',') if t]
    if 'cek' in args.tiers:   # the reference tier goes first
        args.tiers = ['cek'] + [t for t in args.tiers if t != 'cek']
    if not os.access(args.sxpool, os.X_OK):
        print('diff.py: %s is not executable' % args.sxpool, file=sys.stderr)
        return 2

    workdir = tempfile.mkdtemp(prefix='sxdiff.')
    try:
        if args.regressions:
            return run_regressions(args, workdir)
        if args.time_seed:
            args.seed = int(time.time() * 1000) % 1000000000
        print('seed %d' % args.seed, flush=True)
        count = args.count if args.count is not None else (None if args.seconds else 100)
        tiers = available_tiers(args.sxpool, args.tiers, workdir)
        if not tiers:
            print('diff.py: no tier is available', file=sys.stderr)
            return 2
        print('tiers: %s%s' % (','.join(tiers), '' if len(tiers) > 1 else
                               ' (one tier: checking that programs run cleanly)'), flush=True)
        return run_programs(args, tiers, count, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_programs(args, tiers, count, workdir):
    start = time.time()
    deadline = start + args.seconds if args.seconds else None
    ran, failures = 0, []
    next_seed = args.seed
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending = set()
        while True:
            while (not failures and len(pending) < 2 * args.jobs
                   and (count is None or next_seed - args.seed < count)
                   and (deadline is None or time.time() < deadline)):
                pending.add(pool.submit(check_program, args.sxpool, tiers, next_seed, workdir))
                next_seed += 1
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                seed, prog, results, verdict = fut.result()
                ran += 1
                if verdict:
                    failures.append((seed, prog, results, verdict))
    elapsed = time.time() - start
    if failures:
        seed, prog, results, verdict = min(failures, key=lambda f: f[0])
        report_failure(args, tiers, seed, prog, results, verdict, workdir)
        print('%d programs run in %.1fs (tiers %s): %d failed' % (ran, elapsed, ','.join(tiers), len(failures)))
        return 1
    print('%d programs run in %.1fs (tiers %s, seeds %d..%d): no failures' % (
        ran, elapsed, ','.join(tiers), args.seed, args.seed + ran - 1))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
