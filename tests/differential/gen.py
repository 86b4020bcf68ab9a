#!/usr/bin/env python3
"""Random SX programs for differential testing of the CEK, VM and JIT tiers.

`generate(seed)` returns a `Program`: the source text of a well-formed SX
program that terminates quickly, prints its intermediate results, and whose
output SX.md pins down completely, so every tier must print exactly the same
bytes and end with the same exit status and error kind.  The same seed always
gives the same program (only a private `random.Random(seed)` is used).

Design
------
Expressions come from a small type system, so programs are well formed and
mostly compute something rather than failing at once:

    int float num bool str sym char any
    ilist (list of ints)  slist (list of strings)  vec (vector of ints)
    dict (keys :a "k" 1 ..., integer values)
    procedures: int->int, int int->int, int->bool, thunk returning int

Every generator method returns source text and adds an estimate of the
evaluation steps it costs to a meter, `self.cost`.  A loop measures its body
once and adds the rest of its iterations; a lambda measures its body, takes
it off the meter (creating a closure runs nothing) and hands back the cost
of one call, which `map`, `filter`, `fold-left` ... multiply by the longest
list they can see; a top-level function records the cost of a call the same
way.  `fit` regenerates a piece that is over budget, so every program runs
in milliseconds.  Termination is by construction: loop counters are never
assigned, loop bounds are literals, recursion goes down from a literal or
`(modulo x K)`, every list production is told the longest list it may
produce (at most LMAX), and only ints, floats, booleans and size-bounded
lists are ever `set!`.

Errors are a feature: arithmetic overflows near 2^61 and divides by zero,
`car` of an empty list is a type-error, indexes go out of range, and
templates raise deliberate errors (user `error`, `raise` of non-error values,
arity errors, errors deep inside recursion and inside `map`/`for-each`/
`fold-left`/`vector-map` callbacks) caught by `guard` at many depths and
followed by more `map`/`rest` calls whose results show whether the evaluator
survived the unwinding intact.  Other templates stress a compiler more than
an evaluator: calls with hundreds of arguments, hundreds of locals or
captured variables, a `cond` with a hundred clauses, a thousand constants,
expressions nested hundreds deep, tail calls from every tail position
300,000 times, recursion 100,000 deep, closures nested sixty deep.  Each top-level test form is wrapped in a
catch-all guard printing only `(error-kind e)`, so one error never hides the
rest; global definitions fall back to a literal when their initial value
fails.  At most one uncaught error is allowed, as the last form, and
`Program.expect_error` says whether it is there.

Things SX.md leaves open are avoided: `eq?` is used on symbols and integers
only; no procedure or error object is ever printed; error messages are
printed only where SX.md fixes them (user `error` messages and irritants, the
write form of a raised value, arity errors of named and anonymous
procedures, the `map: expected (fn list …), got (fn integer)` type-error);
`sort` comparators and `fold-right` callbacks come from a fixed list of pure,
total procedures; where R7RS leaves the order of evaluation open (`let`,
named `let` and `do` bindings, dict literals, quasiquote) at most one
subexpression may fail or have an effect; quoted constants and vector
literals are never mutated; `min`/`max` see integers only; case conversion
and character classes see ASCII only; nothing cyclic is built; `gensym` and
`current-time-ms` are not used.

Shapes
------
`generate(seed, shape)`: 'classic' is the program described above (with a
few higher-order forms mixed in); 'higher-order' programs are made of the
h_* pieces: procedure values composed at random (closures capturing random
variables, closures over state changed with set!, procedures taken from
vectors, lists, dicts and alists, compose and curry, variadic and apply
wrappers, closures over letrec helpers, closures returning closures), called
directly, through apply, from map/fold-left/vector-map and in tail position;
random direct-style recursions and their mechanical CPS translation (fresh
lambdas as continuations, the CPS function an internal define, a letrec or a
top-level define, closures passed or captured), cpstak itself, CPS chains
10^4 or 10^5 continuations deep that must run in constant stack, closures
made in loops, set! shared between closures, mutual recursion through
closures, variadic and optional arguments, and hot functions called
1000-2500 times so that every JIT threshold is crossed.  A share of these
programs are small and made of one or two kinds of piece, so that what one
kind does to the heap and the collector is not diluted.  A quarter of the CPS
pieces are preceded by a warm-up loop (see `warm`) that, at the default
threshold, keeps calling until native code has arrived, and in a share of
all programs the test forms run a second time after the compiled count has
settled (`second_pass`).  'mixed' (the
default) is higher-order for HO_SHARE of the seeds.

Both shapes mix in r_redef pieces: a function that calls only itself and
inline built-ins, whose native code assumes the globals it takes its
callees from (jit/README.md, "Assumed globals"), is called over every JIT
threshold, and then its own name or a built-in it runs inline (+, <, car,
cons, = ...) is written: by define or set!, to a wrapper of the old closure,
from a hot function whose native code does the set!, before its first
call, with the old closure held and called afterwards; more calls show
whether every tier saw the write.  Built-ins are written only while the
piece runs (restored after, and by the guard around it), and one that
bounds a recursion only ever gets a lambda of the same meaning.

Run `gen.py [--shape=SHAPE] SEED` to print the program for a seed.
"""

import random
import sys
from contextlib import contextmanager

INT_MAX = (1 << 61) - 1
INT_MIN = -(1 << 61)
LMAX = 10              # no list or vector expression is longer than this
REC_DEPTH = 12         # recursive helpers are called with 0 .. REC_DEPTH
FORM_BUDGET = 60000    # cost limit of one top-level form
FN_BUDGET = 3000       # cost limit of one call of a top-level function
CB_BUDGET = 300        # cost limit of one call of a callback
PROGRAM_BUDGET = 400000
SECOND_PASS_SHARE = 0.15   # programs that run their test forms twice (second_pass)

INT, FLOAT, NUM, BOOL, STR, SYM, CHAR = 'int', 'float', 'num', 'bool', 'str', 'sym', 'char'
ILIST, SLIST, DICT, VEC, ANY = 'ilist', 'slist', 'dict', 'vec', 'any'
PRINTABLE = [INT, FLOAT, BOOL, STR, SYM, CHAR, ILIST, SLIST, DICT, VEC]
SIZED = (ILIST, SLIST, VEC)
SETTABLE = (INT, FLOAT, BOOL, ILIST)

FN1 = ('fn', (INT,), INT)
FN2 = ('fn', (INT, INT), INT)
PRED = ('fn', (INT,), BOOL)
THUNK = ('fn', (), INT)

BIG_INTS = [INT_MAX, INT_MIN, INT_MAX - 1, INT_MIN + 1, 1 << 60, -(1 << 60),
            1518500249, 1518500250, 3037000500, 4294967296, 2147483648,
            1000000007, 999999999999, 121645100408832000, INT_MAX - 2,
            1 << 59, -(1 << 59), 1 << 31, -(1 << 31), (1 << 32) - 1, 1 << 30,
            (1 << 53) + 1]
FLOATS = ['0.5', '1.5', '-2.25', '0.1', '0.2', '0.3', '3.0', '-0.0', '0.0',
          '1e300', '-1e300', '1e-300', '2.5', '1e16', '123.456', '1e-05',
          '5e-324', '+inf.0', '-inf.0', '+nan.0', '2305843009213693951.0',
          '1e19', '-7.75', '100.0']
# (source, length in characters)
STRINGS = [('""', 0), ('"a"', 1), ('"hello"', 5), ('"Hello World"', 11),
           ('"a,b,,c"', 6), ('"x y  z"', 6), ('"h\u00e9llo"', 5),
           ('"\u03bbx.x"', 4), ('"tab\\there"', 8), ('"q\\"uote"', 6),
           ('"back\\\\slash"', 10), ('"line\\nbreak"', 10), ('"42"', 2),
           ('"-17"', 3), ('"3.25"', 4), ('"abc"', 3), ('"  padded  "', 10),
           ('"\u65e5\u672c"', 2), ('"zz"', 2), ('"Ab,Cd"', 5),
           ('"nul\\x0;bell\\x7;del\\x7f;"', 10), ('"cr\\r"', 3)]
ASCII_STRINGS = ['"Hello World"', '"abc"', '"MiXeD 42"', '""', '"q\\"uote"']
NUMERIC_STRINGS = ['"42"', '"-17"', '"3.25"', '"1e3"', '"#xff"', '"abc"',
                   '"12abc"', '""', '"#b101"', '"1.5e2"', '".5"', '"-0.0"',
                   '"+inf.0"', '"007"', '"2305843009213693951"']
SYMBOLS = ['a', 'b', 'c', 'foo', 'bar', 'x-y', 'ok']
CHARS = ['#\\a', '#\\z', '#\\A', '#\\space', '#\\0', '#\\9', '#\\\u00e9',
         '#\\-', '#\\,', '#\\x']
ASCII_CHARS = ['#\\a', '#\\Z', '#\\space', '#\\7', '#\\-', '#\\newline']
DICT_KEYS = [':a', ':b', ':c', ':d', '"k"', '"m"', '1', '2']
KEYWORDS = [':a', ':b', ':key', ':x-y']
SEPARATORS = ['","', '" "', '""', '#\\,', '", "', '"b"']
INT_CMPS = ['<', '>', '(lambda (a b) (< a b))', '(lambda (a b) (> a b))',
            '(lambda (a b) (< (modulo a 3) (modulo b 3)))',
            '(lambda (a b) (> (abs a) (abs b)))',
            '(lambda (a b) (< (- a) (- b)))',
            '(lambda (a b) (and (even? a) (odd? b)))']
STR_CMPS = ['string<?', 'string>?',
            '(lambda (a b) (< (string-length a) (string-length b)))']
PURE_FOLDS = ['+', '-', '*', 'max', 'min', '(lambda (x acc) (+ x (* 2 acc)))',
              '(lambda (x acc) (- acc x))']
# Expressions that always fail; {x} is an int variable in scope.
ERRORS = ['(car {x})', '(vector-ref (vector 1 2) (+ 5 (abs {x})))',
          '(error "deep failure" {x})', '(error "plain failure")',
          '(raise (quote boom))', '(raise (list (quote deep) {x}))',
          '(raise {x})', '(raise "text")', '((lambda (a b) a) {x})',
          '(quotient {x} 0)', '(+ 2305843009213693951 1 (abs {x}))',
          '(string-ref "abc" 7)', '(list-ref (list 1 2) 2)',
          '(+ {x} "one")', '(symbol->string {x})', '(cdr (list-tail (list 1) 2))']


def form(*parts):
    """(part ...), leaving out empty parts."""
    return '(%s)' % ' '.join(p for p in parts if p)


class Var:
    """A variable in scope: type, the longest its value can be (sized
    types), whether it may be set!, and the cost of a call (procedures)."""

    def __init__(self, name, ty, size=LMAX, mutable=True, cost=1):
        self.name, self.ty, self.size = name, ty, size
        self.mutable, self.cost = mutable, cost


class Fn:
    """A top-level function: parameter types, whether it takes a rest list
    of ints, result type and size bound, cost of one call, and whether its
    int arguments must be small and non-negative (they bound recursion)."""

    def __init__(self, name, params, ret, cost, size=LMAX, rest=False, small=False):
        self.name, self.params, self.ret, self.cost = name, params, ret, cost
        self.size, self.rest, self.small = size, rest, small


class Program:
    """Generated source, its seed, and whether it must end with an uncaught
    error (exit status 1) rather than exit status 0."""

    def __init__(self, seed, text, expect_error, redefines=False):
        self.seed, self.text, self.expect_error = seed, text, expect_error
        self.redefines = redefines   # it has r_redef pieces


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seed = seed
        self.cost = 0
        self.scope = []       # Vars, innermost last
        self.fns = []         # top-level functions defined so far
        self.n = 0            # for fresh names
        self.labels = 0
        self.fail_fns = []    # int -> int functions that fail on one argument
        self.deep_fns = []    # functions that fail at the bottom of a recursion
        self.need_helpers = False   # compose, curry ... are used
        self.cps_g = self.cps_gk = False   # closures arith() may call (h_cps)
        self.dextra = ''      # arguments a direct-style recursive call passes on
        self.redef_used = False   # r_redef pieces are in the program (REDEF_PRELUDE)
        self.r_counters = []

    # ----------------------------------------------------------------- helpers

    def chance(self, p):
        return self.r.random() < p

    def choice(self, xs):
        return self.r.choice(xs)

    def fresh(self, prefix):
        self.n += 1
        return '%s%d' % (prefix, self.n)

    def label(self):
        self.labels += 1
        return '"t%d"' % self.labels

    def pick(self, options):
        """options: list of (weight, thunk); calls one thunk."""
        total = sum(w for w, _ in options)
        x = self.r.random() * total
        for w, f in options:
            x -= w
            if x < 0:
                return f()
        return options[-1][1]()

    def spend(self, k):
        self.cost += k

    def measure(self, make):
        """(make(), cost make() added to the meter)."""
        before = self.cost
        txt = make()
        return txt, self.cost - before

    def repeat(self, make, times):
        """Text of make(), metered as if it ran `times` times."""
        txt, used = self.measure(make)
        self.spend(used * (times - 1))
        return txt

    def fit(self, make, budget, fallback):
        """make() again (up to six tries) until it costs at most budget."""
        start = self.cost
        for _ in range(6):
            self.cost = start
            txt = make()
            if self.cost - start <= budget:
                return txt
        self.cost = start
        return fallback()

    @contextmanager
    def bound(self, *variables):
        self.scope.extend(variables)
        try:
            yield
        finally:
            del self.scope[len(self.scope) - len(variables):]

    def visible(self):
        seen = {}
        for v in self.scope:
            seen[v.name] = v
        return list(seen.values())

    def vars_of(self, t, n=LMAX):
        out = []
        for v in self.visible():
            if v.ty == t or (t == ANY and v.ty in PRINTABLE) or \
                    (t == NUM and v.ty in (INT, FLOAT)):
                if v.ty not in SIZED or v.size <= n:
                    out.append(v)
        return out

    def small_arg(self, d):
        """A non-negative int no larger than REC_DEPTH."""
        if d > 0 and self.chance(0.3):
            return '(modulo %s %d)' % (self.expr(INT, d - 1), REC_DEPTH + 1)
        self.spend(1)
        return str(self.r.randint(0, REC_DEPTH))

    def index(self, d):
        """An index: usually within a short list, sometimes anything."""
        if d > 0 and self.chance(0.15):
            return self.expr(INT, d - 1)
        self.spend(1)
        return str(self.r.randint(0, 3 if self.chance(0.8) else LMAX))

    # ---------------------------------------------------------------- literals

    def lit_int(self):
        x = self.r.random()
        if x < 0.65:
            return str(self.r.randint(-5, 20))
        if x < 0.85:
            return str(self.r.randint(-1000, 1000))
        if x < 0.95:
            return str(self.choice(BIG_INTS))
        return '0'

    def lit_float(self):
        if self.chance(0.3):
            return repr(round(self.r.uniform(-100, 100), self.r.randint(0, 3)))
        return self.choice(FLOATS)

    def lit_str(self, n=40):
        ok = [s for s, ln in STRINGS if ln <= n]
        return self.choice(ok) if ok else '""'

    def lit_ilist(self, n):
        k = self.r.randint(0, min(n, 6))
        items = ' '.join(self.lit_int() if self.chance(0.3) else str(self.r.randint(-3, 9))
                         for _ in range(k))
        if k == 0:
            return self.choice(["'()", 'nil', '(list)'])
        return "'(%s)" % items if self.chance(0.5) else '(list %s)' % items

    def literal(self, t, n=LMAX):
        """A literal of type t; dicts and vectors are freshly built."""
        self.spend(1)
        if t == INT:
            return self.lit_int()
        if t == FLOAT:
            return self.lit_float()
        if t == NUM:
            return self.lit_int() if self.chance(0.6) else self.lit_float()
        if t == BOOL:
            return self.choice(['#t', '#f', 'true', 'false'])
        if t == STR:
            return self.lit_str()
        if t == SYM:
            return "'" + self.choice(SYMBOLS)
        if t == CHAR:
            return self.choice(CHARS)
        if t == ILIST:
            return self.lit_ilist(n)
        if t == SLIST:
            k = self.r.randint(0, min(n, 4))
            return "'(%s)" % ' '.join(self.lit_str(10) for _ in range(k))
        if t == DICT:
            keys = self.r.sample(DICT_KEYS, self.r.randint(0, 4))
            body = ' '.join('%s %s' % (k, self.lit_int()) for k in keys)
            return '{%s}' % body if self.chance(0.7) else form('dict', body)
        if t == VEC:
            k = self.r.randint(0, min(n, 5))
            return form('vector', *[self.lit_int() for _ in range(k)])
        if t == ANY:
            return self.literal(self.choice(PRINTABLE), n)
        raise ValueError(t)

    def leaf(self, t, n=LMAX):
        """A variable or a literal: never fails, has no effect."""
        vs = self.vars_of(t, n)
        if vs and self.chance(0.6):
            self.spend(1)
            return self.choice(vs).name
        return self.literal(t, n)

    # ------------------------------------------------------------- expressions

    def expr(self, t, d, n=LMAX):
        """An expression of type t (lists at most n long), depth about d."""
        if isinstance(t, tuple):
            return self.fn_expr(t, d)[0]
        if d <= 0 or self.chance(0.12):
            return self.leaf(t, n)
        if t == NUM:
            return self.pick([(6, lambda: self.expr(INT, d, n)),
                              (3, lambda: self.expr(FLOAT, d, n)),
                              (1, lambda: self.call('/', [INT, INT], d))])
        if t == ANY:
            return self.any_expr(d, n)
        if self.chance(0.22):
            return self.generic(t, d, n)
        return getattr(self, 'e_' + t)(d, n)

    def call(self, op, args, d, n=LMAX):
        """(op arg ...): a type in args becomes an expression of that type,
        anything else is used as source text."""
        parts = [op]
        for a in args:
            if a in PRINTABLE or a in (ANY, NUM):
                parts.append(self.expr(a, d - 1, n))
            else:
                parts.append(a)
        self.spend(1)
        return '(%s)' % ' '.join(parts)

    def generic(self, t, d, n):
        """Forms of any type: if, let, let*, cond, case, guard, begin with an
        effect, immediate lambdas, internal defines, user function calls."""
        opts = [
            (3, lambda: self.g_if(t, d, n)),
            (3, lambda: self.g_let(t, d, n)),
            (2, lambda: self.g_let_star(t, d, n)),
            (1, lambda: self.g_cond(t, d, n)),
            (1, lambda: self.g_case(t, d, n)),
            (3, lambda: self.g_guard(t, d, n)),
            (2, lambda: self.g_begin(t, d, n)),
            (1, lambda: self.g_immediate_lambda(t, d, n)),
            (1, lambda: self.g_internal_define(t, d, n)),
        ]
        fns = [f for f in self.fns if f.ret == t and (t not in SIZED or f.size <= n)]
        if fns:
            opts.append((4, lambda: self.user_call(self.choice(fns), d)))
        return self.pick(opts)

    def g_if(self, t, d, n):
        return '(if %s %s %s)' % (self.expr(BOOL, d - 1), self.expr(t, d - 1, n),
                                  self.expr(t, d - 1, n))

    def new_binding(self, d, n, safe=False, ty=None):
        """(Var, init text) for a new local; safe inits cannot fail."""
        ty = ty or self.choice(PRINTABLE + [INT, INT, ILIST, FN1])
        name = self.fresh(self.choice(['x', 'y', 'v']))
        if self.chance(0.15):
            same = [v for v in self.visible() if v.ty == ty]
            if same:
                name = self.choice(same).name      # shadow an outer variable
        if isinstance(ty, tuple):
            txt, callc = self.fn_expr(ty, 0 if safe else d - 1)
            return Var(name, ty, cost=callc, mutable=False), txt
        size = n if ty in SIZED else LMAX
        txt = self.leaf(ty, size) if safe else self.expr(ty, d - 1, size)
        return Var(name, ty, size, ty in SETTABLE), txt

    def g_let(self, t, d, n):
        k = self.r.randint(1, 3)
        loud = self.r.randrange(k)   # the only init that may fail or act
        seen, keep = set(), []
        for i in range(k):
            v, txt = self.new_binding(d, n, safe=(i != loud))
            if v.name not in seen:
                seen.add(v.name)
                keep.append((v, '(%s %s)' % (v.name, txt)))
        with self.bound(*[v for v, _ in keep]):
            body = self.body(t, d - 1, n)
        return '(let (%s) %s)' % (' '.join(b for _, b in keep), body)

    def g_let_star(self, t, d, n):
        vs, bindings = [], []
        for _ in range(self.r.randint(1, 3)):
            with self.bound(*vs):
                v, txt = self.new_binding(d, n)
            bindings.append('(%s %s)' % (v.name, txt))
            vs.append(v)
        with self.bound(*vs):
            body = self.body(t, d - 1, n)
        return '(let* (%s) %s)' % (' '.join(bindings), body)

    def body(self, t, d, n):
        """A body: maybe some effects first, then the value."""
        parts = [self.stmt(d) for _ in range(self.choice([0, 0, 0, 1, 2]))]
        parts.append(self.expr(t, d, n))
        return ' '.join(parts)

    def g_cond(self, t, d, n):
        clauses = ['(%s %s)' % (self.expr(BOOL, d - 1), self.expr(t, d - 1, n))
                   for _ in range(self.r.randint(1, 3))]
        if t == INT and self.chance(0.3):
            clauses.insert(0, '((member %s %s) => length)' % (self.expr(INT, d - 1),
                                                              self.expr(ILIST, d - 1)))
            self.spend(LMAX)
        clauses.append('(else %s)' % self.expr(t, d - 1, n))
        return '(cond %s)' % ' '.join(clauses)

    def g_case(self, t, d, n):
        kind = self.choice([INT, SYM, CHAR])
        key = self.expr(kind, d - 1)
        pool = list({INT: [str(i) for i in range(-2, 8)], SYM: SYMBOLS, CHAR: CHARS}[kind])
        self.r.shuffle(pool)
        clauses, i = [], 0
        for _ in range(self.r.randint(1, 3)):
            m = self.r.randint(1, 2)
            data, i = pool[i:i + m], i + m
            if data:
                clauses.append('((%s) %s)' % (' '.join(data), self.expr(t, d - 1, n)))
        clauses.append('(else %s)' % self.expr(t, d - 1, n))
        return '(case %s %s)' % (key, ' '.join(clauses))

    def g_guard(self, t, d, n):
        e = self.fresh('e')
        x = self.expr(t, d - 1, n)
        f1, f2 = self.leaf(t, n), self.leaf(t, n)
        shape = self.r.randrange(5)
        if shape == 0:
            clauses = '(#t %s)' % f1
        elif shape == 1:
            clauses = '((error? %s) %s) (else %s)' % (e, f1, f2)
        elif shape == 2:    # may match nothing: re-raised to an outer guard
            clauses = '((symbol? %s) %s) ((string? %s) %s)' % (e, f1, e, f2)
        elif shape == 3:
            clauses = "((eq? (error-kind %s) '%s) %s) (else %s)" % (
                e, self.choice(['type-error', 'raised', 'user-error', 'overflow',
                                'index-error', 'arity-error', 'division-by-zero']), f1, f2)
        else:
            clauses = '((error? %s) => (lambda (b) %s))' % (e, f1)
        return '(guard (%s %s) %s)' % (e, clauses, x)

    def g_begin(self, t, d, n):
        return '(begin %s %s)' % (self.stmt(d - 1), self.expr(t, d - 1, n))

    def g_immediate_lambda(self, t, d, n):
        vs, args = [], []
        for _ in range(self.r.randint(0, 2)):
            ty = self.choice([INT, INT, STR, ILIST])
            v = Var(self.fresh('p'), ty, n if ty == ILIST else LMAX, ty in SETTABLE)
            args.append(self.expr(ty, d - 1, v.size))
            vs.append(v)
        with self.bound(*vs):
            body = self.body(t, d - 1, n)
        kw = self.choice(['lambda', 'lambda', 'fn'])
        return form('(%s (%s) %s)' % (kw, ' '.join(v.name for v in vs), body), *args)

    def g_internal_define(self, t, d, n):
        v, txt = self.new_binding(d, n, ty=self.choice([INT, STR, ILIST]))
        v.name = self.fresh('w')
        parts = ['(define %s %s)' % (v.name, txt)]
        with self.bound(v):
            if self.chance(0.6):
                h = Var(self.fresh('h'), FN1, mutable=False)
                p = Var(self.fresh('q'), INT)
                with self.bound(p):
                    hb, h.cost = self.measure(lambda: self.expr(INT, min(d - 1, 2)))
                self.spend(-h.cost)
                parts.append('(define (%s %s) %s)' % (h.name, p.name, hb))
                with self.bound(h):
                    parts.append(self.body(t, d - 1, n))
            else:
                parts.append(self.body(t, d - 1, n))
        return '(let () %s)' % ' '.join(parts)

    def user_call(self, f, d):
        args = []
        for t in f.params:
            if f.small and t == INT:
                args.append(self.small_arg(d - 1))
            else:
                args.append(self.expr(t, d - 1, f.size if t in SIZED else LMAX))
        if f.rest:
            args += [self.expr(INT, d - 1) for _ in range(self.r.randint(0, 3))]
        self.spend(f.cost + 1)
        return '(%s)' % ' '.join([f.name] + args)

    # -- procedure values

    def fn_expr(self, sig, d):
        """(text, cost of one call) of a procedure value of type sig."""
        _, params, ret = sig
        vs = [v for v in self.vars_of(sig) if v.cost <= CB_BUDGET]
        if vs and self.chance(0.3):
            self.spend(1)
            v = self.choice(vs)
            return v.name, v.cost
        builtins = {FN1: ['abs', '-', '(lambda (x) (* x x))'],
                    FN2: ['+', '-', '*', 'max', 'min', 'quotient'],
                    PRED: ['odd?', 'even?', 'zero?', 'positive?', 'negative?']}.get(sig, [])
        if builtins and (d <= 0 or self.chance(0.25)):
            return self.choice(builtins), 2
        if sig == FN1 and self.fail_fns and self.chance(0.15):
            return self.choice(self.fail_fns), 3
        if self.chance(0.1):
            makers = [f for f in self.fns if f.ret == sig]
            if makers:
                return self.user_call(self.choice(makers), max(d, 1)), 3
        return self.lambda_expr(params, ret, max(d, 1))

    def lambda_expr(self, params, ret, d):
        vs = [Var(self.fresh('a'), t, mutable=(t in SETTABLE)) for t in params]

        def make():
            with self.bound(*vs):
                return self.body(ret, min(d, 3), LMAX)
        body, used = self.measure(lambda: self.fit(make, CB_BUDGET, lambda: self.literal(ret)))
        self.spend(-used)
        kw = 'fn' if self.chance(0.1) else 'lambda'
        return '(%s (%s) %s)' % (kw, ' '.join(v.name for v in vs), body), used + 1

    # -- typed productions

    def e_int(self, d, n):
        c = self.call
        return self.pick([
            (5, lambda: c(self.choice(['+', '-', '*']), [INT, INT], d)),
            (2, lambda: c(self.choice(['+', '*']), [INT, INT, INT], d)),
            (1, lambda: c('-', [INT], d)),
            (3, lambda: c(self.choice(['quotient', 'remainder', 'modulo']),
                          [INT, self.choice(['2', '3', '7', '-4', self.lit_int()])], d)),
            (1, lambda: c(self.choice(['quotient', 'remainder', 'modulo']), [INT, INT], d)),
            (1, lambda: c('abs', [INT], d)),
            (2, lambda: c(self.choice(['min', 'max']), [INT] * self.r.randint(1, 3), d)),
            (1, lambda: c('expt', [INT, str(self.r.randint(0, 3))], d)),
            (1, lambda: c('expt', [self.choice(['2', '-2', '3', '10']),
                                   str(self.choice([1, 10, 38, 39, 60, 61, 62]))], d)),
            (2, lambda: c('length', [ILIST], d)),
            (1, lambda: c('string-length', [STR], d)),
            (1, lambda: c('vector-length', [VEC], d)),
            (1, lambda: c('dict-count', [DICT], d)),
            (2, lambda: c('get', [DICT, self.choice(DICT_KEYS), INT], d)),
            (2, lambda: c(self.choice(['car', 'first', 'cadr', 'second', 'third']), [ILIST], d)),
            (2, lambda: self.e_list_ref(d)),
            (2, lambda: '(vector-ref %s %s)' % (self.expr(VEC, d - 1), self.index(d))),
            (2, lambda: self.e_int_fold(d)),
            (1, lambda: c('char->integer', [CHAR], d)),
            (1, lambda: c('exact', [c(self.choice(['round', 'floor', 'truncate', 'ceiling']),
                                      [FLOAT], d - 1)], d)),
            (1, lambda: c('string->number', [c('number->string', [INT], d - 1)], d)),
            (2, lambda: self.e_fn_call(FN1, [INT], d)),
            (1, lambda: self.e_fn_call(FN2, [INT, INT], d)),
            (1, lambda: self.e_fn_call(THUNK, [], d)),
            (2, lambda: self.e_int_loop(d)),
            (1, lambda: self.e_letrec(d)),
            (1, lambda: '(length %s)' % self.e_filter(d - 1, LMAX)),
            (1, lambda: '(length (string-split %s %s))' % (self.lit_str(), self.choice(SEPARATORS))),
            (1, lambda: '(apply + %s %s)' % (self.expr(INT, d - 1), self.expr(ILIST, d - 1))),
        ])

    def e_list_ref(self, d):
        l, i = self.expr(ILIST, d - 1), self.index(d)
        self.spend(LMAX)
        if self.chance(0.3):
            return '(car (list-tail %s %s))' % (l, i)
        return '(list-ref %s %s)' % (l, i)

    def e_int_fold(self, d):
        l, init = self.expr(ILIST, d - 1), self.expr(INT, d - 1)
        x = self.r.randrange(6)
        if x == 0:
            self.spend(LMAX)
            return '(apply %s %s)' % (self.choice(['+', '*', 'max', 'min', '-']), l)
        if x == 2:
            self.spend(3 * LMAX)
            return '(fold-right %s %s %s)' % (self.choice(PURE_FOLDS), init, l)
        if x == 4:
            self.spend(LMAX)
            return '(fold-left + %s %s %s)' % (init, l, self.expr(ILIST, d - 1))
        if x == 5:
            acc, y = Var(self.fresh('acc'), INT), Var(self.fresh('x'), INT)
            with self.bound(acc, y):
                b = self.repeat(lambda: self.expr(INT, min(d - 1, 2)), LMAX)
            return '(fold-left (lambda (%s %s) %s) %s %s)' % (acc.name, y.name, b, init, l)
        f, callc = self.fn_expr(FN2, d - 1)
        self.spend(LMAX * callc)
        return '(%s %s %s %s)' % ('fold-left' if x == 1 else 'reduce', f, init, l)

    def e_fn_call(self, sig, arg_types, d):
        f, callc = self.fn_expr(sig, d - 1)
        args = [self.expr(t, d - 1) for t in arg_types]
        self.spend(callc + 1)
        if sig == FN1 and self.chance(0.2):
            return '(apply %s (list %s))' % (f, ' '.join(args))
        return '(%s)' % ' '.join([f] + args)

    def e_int_loop(self, d):
        k = self.r.randint(0, 15)
        i = Var(self.fresh('i'), INT, mutable=False)
        acc = Var(self.fresh('acc'), INT)
        init = self.expr(INT, d - 1)
        with self.bound(i, acc):
            step = self.repeat(lambda: self.expr(INT, min(d - 1, 3)), k + 1)
            style = self.r.randrange(3)
            if style == 0:
                loop = self.fresh('loop')
                return '(let %s ((%s 0) (%s %s)) (if (>= %s %d) %s (%s (+ %s 1) %s)))' % (
                    loop, i.name, acc.name, init, i.name, k, acc.name, loop, i.name, step)
            if style == 1:
                return '(do ((%s 0 (+ %s 1)) (%s %s %s)) ((>= %s %d) %s))' % (
                    i.name, i.name, acc.name, init, step, i.name, k, acc.name)
            s = self.repeat(lambda: self.stmt(min(d - 1, 2)), k + 1)
        return '(let ((%s %s)) (do ((%s 0 (+ %s 1))) ((= %s %d) %s) %s (set! %s %s)))' % (
            acc.name, init, i.name, i.name, i.name, k, acc.name, s, acc.name, step)

    def e_letrec(self, d):
        h, h2, n_ = self.fresh('h'), self.fresh('h'), self.fresh('n')
        k = self.r.randint(0, 40)
        if self.chance(0.5):
            self.spend(3 * k)
            return ('(letrec ((%s (lambda (%s) (if (= %s 0) 0 (%s (- %s 1))))) '
                    '(%s (lambda (%s) (if (= %s 0) 1 (%s (- %s 1)))))) (%s %d))' % (
                        h, n_, n_, h2, n_, h2, n_, n_, h, n_, self.choice([h, h2]), k))
        with self.bound(Var(n_, INT, mutable=False)):
            step = self.repeat(lambda: self.expr(INT, 1), k + 1)
        return '(letrec ((%s (lambda (%s) (if (<= %s 0) 0 (+ %s (%s (- %s 1))))))) (%s %d))' % (
            h, n_, n_, step, h, n_, h, k)

    def e_float(self, d, n):
        c = self.call
        return self.pick([
            (3, lambda: c(self.choice(['exact->inexact', 'inexact']), [INT], d)),
            (4, lambda: c(self.choice(['+', '-', '*']), [FLOAT, NUM], d)),
            (2, lambda: c(self.choice(['+', '*']), [NUM, FLOAT], d)),
            (2, lambda: c('/', [FLOAT, NUM], d)),
            (1, lambda: c('/', [NUM, FLOAT], d)),
            (1, lambda: c('/', [FLOAT], d)),
            (1, lambda: c('-', [FLOAT], d)),
            (2, lambda: c('sqrt', [FLOAT], d)),
            (2, lambda: c(self.choice(['floor', 'ceiling', 'round', 'truncate', 'abs']), [FLOAT], d)),
            (1, lambda: c('expt', [FLOAT, str(self.r.randint(0, 4))], d)),
            (1, lambda: c('expt', [self.choice(['2', '3', '10', '-2', '7']), str(self.r.randint(-3, -1))], d)),
            (1, lambda: c('exact->inexact', [c('/', [INT, self.choice(['3', '7', '-2', '0'])], d - 1)], d)),
            (1, lambda: c('*', ['1.0', INT], d)),
        ])

    def e_bool(self, d, n):
        c = self.call
        return self.pick([
            (4, lambda: c(self.choice(['<', '>', '<=', '>=', '=']),
                          [self.choice([INT, INT, NUM]) for _ in range(self.r.randint(2, 3))], d)),
            (2, lambda: c(self.choice(['even?', 'odd?', 'zero?', 'positive?', 'negative?']), [INT], d)),
            (1, lambda: c(self.choice(['zero?', 'positive?', 'negative?', 'integer?', 'float?', 'number?']),
                          [NUM], d)),
            (2, lambda: c(self.choice(['null?', 'pair?', 'list?', 'empty?']), [ILIST], d)),
            (2, lambda: c(self.choice(['number?', 'string?', 'symbol?', 'list?', 'vector?', 'dict?',
                                       'boolean?', 'char?', 'keyword?', 'integer?', 'pair?']), [ANY], d)),
            (2, lambda: self.e_equal(d)),
            (1, lambda: c(self.choice(['eqv?', 'eq?']), [INT, INT], d)),
            (1, lambda: c('eq?', [SYM, SYM], d)),
            (2, lambda: c(self.choice(['string=?', 'string<?', 'string>?', 'string-prefix?',
                                       'string-suffix?', 'string-contains?']), [STR, STR], d)),
            (1, lambda: c('has-key?', [DICT, self.choice(DICT_KEYS)], d)),
            (2, lambda: c('not', [BOOL], d)),
            (2, lambda: c(self.choice(['and', 'or']), [BOOL] * self.r.randint(0, 3), d)),
            (2, lambda: self.e_fn_call(PRED, [INT], d)),
            (1, lambda: '(%s %s)' % (self.choice(['char-alphabetic?', 'char-numeric?', 'char-whitespace?']),
                                     self.choice(ASCII_CHARS))),
            (1, lambda: c(self.choice(['char=?', 'char<?']), [CHAR, CHAR], d)),
            (1, lambda: '(procedure? %s)' % self.choice(['car', "'car", '(lambda () 1)', '5'])),
            (1, lambda: '(if (member %s %s) #t #f)' % (self.expr(INT, d - 1), self.expr(ILIST, d - 1))),
        ])

    def e_equal(self, d):
        t = self.choice(PRINTABLE)
        a = self.expr(t, d - 1)
        b = self.expr(t, d - 1) if self.chance(0.6) else a
        self.spend(LMAX)
        op = 'eqv?' if t in (INT, SYM, CHAR, BOOL) and self.chance(0.5) else 'equal?'
        return '(%s %s %s)' % (op, a, b)

    def e_str(self, d, n):
        c = self.call
        return self.pick([
            (3, lambda: c('string-append', [STR] * self.r.randint(0, 3), d)),
            (3, lambda: c('str', [self.choice([INT, FLOAT, STR, SYM, CHAR, BOOL, ILIST])
                                  for _ in range(self.r.randint(0, 3))], d)),
            (2, lambda: c('substring', [STR] + [str(i) for i in (lambda i: (i, i + self.r.randint(0, 4)))(
                self.r.randint(0, 3))], d)),
            (1, lambda: c('substring', [STR, str(self.r.randint(0, 3))], d)),
            (2, lambda: c('number->string', [NUM], d)),
            (1, lambda: c('number->string', [INT, self.choice(['2', '8', '16', '10'])], d)),
            (1, lambda: c('symbol->string', [SYM], d)),
            (1, lambda: '(keyword->string %s)' % self.choice(KEYWORDS)),
            (1, lambda: '(%s %s)' % (self.choice(['string-upcase', 'string-downcase']),
                                     self.choice(ASCII_STRINGS))),
            (2, lambda: c('string-join', [SLIST] + ([self.choice(['", "', '"-"', '""'])]
                                                    if self.chance(0.6) else []), d)),
            (1, lambda: '(list->string (reverse (string->list %s)))' % self.expr(STR, d - 1)),
            (1, lambda: '(list->string %s)' % form(
                'list', *[self.expr(CHAR, d - 1) for _ in range(self.r.randint(0, 3))])),
            (2, lambda: c(self.choice(['car', 'cadr']), [SLIST], d)),
            (1, lambda: self.e_str_loop()),
        ])

    def e_str_loop(self):
        k = self.r.randint(0, 8)
        loop, i, s = self.fresh('sloop'), self.fresh('i'), self.fresh('s')
        self.spend(5 * k)
        return '(let %s ((%s 0) (%s "")) (if (= %s %d) %s (%s (+ %s 1) (string-append %s (number->string %s) %s))))' % (
            loop, i, s, i, k, s, loop, i, s, i, self.choice(['","', '""', '" "']))

    def e_sym(self, d, n):
        return self.pick([
            (2, lambda: self.call('string->symbol', [STR], d)),
            (2, lambda: "(car '(%s))" % ' '.join(self.r.sample(SYMBOLS, 3))),
            (2, lambda: "(guard (e (#t (error-kind e))) %s 'no-error)" % self.expr(ANY, d - 1)),
            (1, lambda: "(case %s ((0 1) 'small) ((2 3 4) 'medium) (else 'large))" % self.expr(INT, d - 1)),
        ])

    def e_char(self, d, n):
        return self.pick([
            (3, lambda: self.call('string-ref', [STR, str(self.r.randint(0, 3))], d)),
            (1, lambda: '(integer->char (+ 97 (modulo %s 26)))' % self.expr(INT, d - 1)),
            (1, lambda: '(car (string->list %s))' % self.expr(STR, d - 1)),
        ])

    def e_ilist(self, d, n):
        c = self.call
        opts = [(2, lambda: self.literal(ILIST, n)),
                (1, lambda: c('list', [INT] * self.r.randint(0, min(n, 4)), d))]
        if n >= 1:
            opts += [
                (2, lambda: '(range %d)' % self.r.randint(0, n)),
                (1, lambda: self.e_range(n)),
                (1, lambda: '(iota %d%s)' % (self.r.randint(0, n), self.choice(['', ' 1', ' -3 2']))),
                (3, lambda: c('cons', [INT, ILIST], d, n - 1)),
                (1, lambda: c('vector->list', [VEC], d, n)),
            ]
        opts += [
            (2, lambda: c(self.choice(['cdr', 'rest']), [ILIST], d, n)),
            (2, lambda: '(append %s %s)' % (self.expr(ILIST, d - 1, n // 2),
                                            self.expr(ILIST, d - 1, n - n // 2))),
            (2, lambda: c(self.choice(['reverse', 'list-copy']), [ILIST], d, n)),
            (3, lambda: self.e_map(d, n)),
            (2, lambda: self.e_filter(d, n)),
            (2, lambda: '(sort %s %s)' % (self.expr(ILIST, d - 1, n), self.choice(INT_CMPS))),
            (1, lambda: '(list-tail %s %d)' % (self.expr(ILIST, d - 1, n), self.r.randint(0, 3))),
            (1, lambda: self.e_list_loop(d, n)),
        ]
        if n >= 8:
            opts.append((1, lambda: c('vals', [DICT], d)))
        self.spend(3 * LMAX)
        return self.pick(opts)

    def e_range(self, n):
        while True:
            a, b = self.r.randint(-5, 10), self.r.randint(-10, 10)
            step = self.choice([1, 2, -1, -2, 3, 0])
            if step == 0 or len(range(a, b, step)) <= n:
                return '(range %d %d %d)' % (a, b, step)

    def e_map(self, d, n):
        l = self.expr(ILIST, d - 1, n)
        x = self.r.randrange(5)
        if x == 0:
            l2 = self.expr(ILIST, d - 1, n)
            f, callc = self.fn_expr(FN2, d - 1)
            self.spend(n * callc)
            return '(map %s %s %s)' % (f, l, l2)
        if x == 1:   # a callback that catches its own errors
            a, e = Var(self.fresh('a'), INT), self.fresh('e')
            with self.bound(a):
                b = self.repeat(lambda: self.expr(INT, min(d - 1, 3)), n)
            return '(map (lambda (%s) (guard (%s (#t %s)) %s)) %s)' % (a.name, e, self.lit_int(), b, l)
        if x == 2 and self.fail_fns:
            self.spend(3 * n)
            return '(guard (e (#t (list (error-kind e)))) (map %s %s))' % (self.choice(self.fail_fns), l)
        if x == 3:
            self.spend(2 * n)
            return '(map + %s %s)' % (l, self.expr(ILIST, d - 1, n))
        f, callc = self.fn_expr(FN1, d - 1)
        self.spend(n * callc)
        return '(map %s %s)' % (f, l)

    def e_filter(self, d, n):
        l = self.expr(ILIST, d - 1, n)
        f, callc = self.fn_expr(PRED, d - 1)
        self.spend(n * callc)
        return '(filter %s %s)' % (f, l)

    def e_list_loop(self, d, n):
        k = self.r.randint(0, n)
        i = Var(self.fresh('i'), INT, mutable=False)
        with self.bound(i):
            x = self.repeat(lambda: self.expr(INT, min(d - 1, 2)), k + 1)
        acc = self.fresh('acc')
        if self.chance(0.5):
            loop = self.fresh('loop')
            return "(let %s ((%s 0) (%s '())) (if (= %s %d) (reverse %s) (%s (+ %s 1) (cons %s %s))))" % (
                loop, i.name, acc, i.name, k, acc, loop, i.name, x, acc)
        return "(do ((%s 0 (+ %s 1)) (%s '() (cons %s %s))) ((= %s %d) %s))" % (
            i.name, i.name, acc, x, acc, i.name, k, acc)

    def e_slist(self, d, n):
        c = self.call
        opts = [
            (2, lambda: self.literal(SLIST, n)),
            (1, lambda: c('list', [STR] * self.r.randint(0, min(n, 3)), d)),
            (2, lambda: '(map number->string %s)' % self.expr(ILIST, d - 1, n)),
            (1, lambda: '(sort %s %s)' % (self.expr(SLIST, d - 1, n), self.choice(STR_CMPS))),
            (1, lambda: c(self.choice(['reverse', 'cdr']), [SLIST], d, n)),
            (1, lambda: '(map string-upcase %s)' % form(
                'list', *[self.choice(ASCII_STRINGS) for _ in range(self.r.randint(0, min(n, 3)))])),
            (1, lambda: '(filter (lambda (s) (> (string-length s) 1)) %s)' % self.expr(SLIST, d - 1, n)),
        ]
        if n >= 3:
            opts.append((1, lambda: "(map symbol->string '(a bb ccc))"))
        if n >= 1:
            opts.append((1, lambda: c('cons', [STR, SLIST], d, n - 1)))
        if n >= 12:
            opts.append((2, lambda: '(string-split %s%s)' % (
                self.lit_str(n - 1), (' ' + self.choice(SEPARATORS)) if self.chance(0.8) else '')))
        self.spend(5 * LMAX)
        return self.pick(opts)

    def e_dict(self, d, n):
        key = self.choice(DICT_KEYS)
        self.spend(10)
        return self.pick([
            (2, lambda: self.e_dict_literal(d)),
            (2, lambda: '(assoc %s %s %s)' % (self.expr(DICT, d - 1), key, self.expr(INT, d - 1))),
            (1, lambda: '(dissoc %s %s)' % (self.expr(DICT, d - 1), key)),
            (1, lambda: self.e_dict_built(d)),
        ])

    def e_dict_literal(self, d):
        keys = self.r.sample(DICT_KEYS, self.r.randint(0, 4))
        loud = self.r.randrange(len(keys)) if keys else -1
        parts = ['%s %s' % (k, self.expr(INT, d - 1) if i == loud else self.leaf(INT))
                 for i, k in enumerate(keys)]
        if self.chance(0.6):
            return '{%s}' % ' '.join(parts)
        return form('dict', *parts)

    def e_dict_built(self, d):
        v = self.fresh('d')
        ops = []
        for _ in range(self.r.randint(1, 4)):
            k = self.choice(DICT_KEYS)
            if self.chance(0.75):
                ops.append('(dict-set! %s %s %s)' % (v, k, self.expr(INT, d - 1)))
            else:
                ops.append('(dict-delete! %s %s)' % (v, k))
        return '(let ((%s (dict))) %s %s)' % (v, ' '.join(ops), v)

    def e_vec(self, d, n):
        c = self.call
        self.spend(2 * LMAX)
        return self.pick([
            (3, lambda: c('vector', [INT] * self.r.randint(0, min(n, 4)), d)),
            (1, lambda: '(make-vector %d %s)' % (self.r.randint(0, n), self.expr(INT, d - 1))),
            (2, lambda: c('list->vector', [ILIST], d, n)),
            (2, lambda: self.e_vector_map(d, n)),
        ])

    def e_vector_map(self, d, n):
        f, callc = self.fn_expr(FN1, d - 1)
        self.spend(n * callc)
        return '(vector-map %s %s)' % (f, self.expr(VEC, d - 1, n))

    def any_expr(self, d, n):
        c = self.call
        self.spend(LMAX)
        opts = [
            (10, lambda: self.expr(self.choice(PRINTABLE), d, n)),
            (2, lambda: c('list', [ANY] * self.r.randint(0, min(n, 3)), d, n)),
            (1, lambda: c('cons', [ANY, ANY], d, n)),
            (1, lambda: c('vector', [ANY] * self.r.randint(0, min(n, 3)), d, n)),
            (1, lambda: c(self.choice(['member', 'memv']), [INT, ILIST], d, n)),
            (1, lambda: c('memq', [SYM, "'(a b c foo)"], d)),
            (1, lambda: c('member', [INT, ILIST, self.choice(
                ['(lambda (a b) (= (modulo a 3) (modulo b 3)))', '<', '(lambda (a b) (> a b))'])], d)),
            (1, lambda: c(self.choice(['assoc', 'assv']),
                          [INT, "'((1 . one) (2 . two) (%d . three))" % self.r.randint(0, 5)], d)),
            (1, lambda: c('assq', [SYM, "'((a 1) (b 2) (foo 3))"], d)),
            (1, lambda: c(self.choice(['keys', 'dict->list']), [DICT], d)),
            (1, lambda: self.e_quasi(d, n)),
            (1, lambda: '(string->number %s)' % self.choice(NUMERIC_STRINGS)),
            (1, lambda: c('string-index', [STR, self.choice(CHARS[:4] + ['char-numeric?'])], d)),
            (1, lambda: c(self.choice(['when', 'unless']), [BOOL, ANY], d)),
            (1, lambda: c('string->list', [STR], d)),
            (1, lambda: c('get', [DICT, self.choice(DICT_KEYS)], d)),
            (1, lambda: c('last-pair', [ILIST], d)),
            (1, lambda: c('apply', ['list', INT, ILIST], d)),
            (1, lambda: self.e_raise_catch(d)),
            (1, lambda: "(list %s 'sym (void) (if #f #f) '() (begin))" % self.choice(KEYWORDS)),
            (1, lambda: c('or', [BOOL, ANY], d)),
        ]
        fns = [f for f in self.fns if f.ret == ANY]
        if fns:
            opts.append((2, lambda: self.user_call(self.choice(fns), d)))
        return self.pick(opts)

    def e_quasi(self, d, n):
        x = self.expr(INT, d - 1)
        return '`(%s ,%s ,@%s (nested ,%s) . tail)' % (self.choice(SYMBOLS), x,
                                                        self.leaf(ILIST, n), self.leaf(STR))

    def e_raise_catch(self, d):
        """Raise a value or an error and show what guard sees."""
        e = self.fresh('e')
        body = self.raising(d)
        handler = self.choice([
            "(list 'kind (error-kind %s) (error? %s))" % (e, e),
            "(if (error? %s) (error-kind %s) (list 'raised (error-payload %s) (error-message %s)))" % (e, e, e, e),
            "(if (eq? (error-kind %s) 'user-error) (list (error-message %s) (error-payload %s)) (error-kind %s))"
            % (e, e, e, e),
        ])
        return '(guard (%s (#t %s)) %s)' % (e, handler, body)

    def raising(self, d):
        """An expression that always raises."""
        x = self.expr(ANY, min(d - 1, 2))
        return self.choice([
            '(raise %s)' % x,
            '(error "failed" %s)' % x,
            '(error "no irritants")',
            '(raise (list %s))' % x,
            '(car %s)' % self.lit_int(),
            '(vector-ref (vector) 0)',
            '(begin %s (raise (quote stop)))' % x,
        ])

    # -------------------------------------------------------------- statements

    def stmt(self, d):
        """An expression run for its effect: assignment, printing, mutation
        of dicts and vectors, loops, closure counters, guarded blocks."""
        c = self.call
        self.spend(2)
        opts = [(3, lambda: self.s_print(d))]
        settable = [v for v in self.vars_of(ANY) if v.mutable and v.ty in SETTABLE]
        if settable:
            def set_one():
                v = self.choice(settable)
                return '(set! %s %s)' % (v.name, self.expr(v.ty, d - 1, v.size))
            opts.append((5, set_one))
        vecs = self.vars_of(VEC)
        if vecs:
            opts.append((2, lambda: '(vector-set! %s %s %s)' % (
                self.choice(vecs).name, self.index(d), self.expr(INT, d - 1))))
            opts.append((1, lambda: '(vector-fill! %s %s)' % (self.choice(vecs).name, self.lit_int())))
        dicts = self.vars_of(DICT)
        if dicts:
            opts.append((2, lambda: '(dict-set! %s %s %s)' % (
                self.choice(dicts).name, self.choice(DICT_KEYS), self.expr(INT, d - 1))))
            opts.append((1, lambda: '(dict-delete! %s %s)' % (self.choice(dicts).name, self.choice(DICT_KEYS))))
        thunks = self.vars_of(THUNK)
        if thunks:
            opts.append((2, lambda: '(%s)' % self.choice(thunks).name))
        if d > 0:
            opts += [
                (1, lambda: c(self.choice(['when', 'unless']), [BOOL, self.stmt(d - 1)], d)),
                (1, lambda: c('if', [BOOL, self.stmt(d - 1), self.stmt(d - 1)], d)),
                (2, lambda: self.s_for_each(d)),
                (1, lambda: self.s_do(d)),
                (1, lambda: self.s_guarded(d)),
            ]
        return self.pick(opts)

    def s_guarded(self, d):
        e = self.fresh('e')
        return '(guard (%s (#t (print "  caught " (error-kind %s)))) %s %s)' % (
            e, e, self.stmt(d - 1), self.stmt(d - 1))

    def s_print(self, d):
        x = self.expr(self.choice(PRINTABLE), min(d, 2))
        lab = '"  p%d "' % self.r.randint(0, 99)
        if self.chance(0.5):
            return '(print %s %s)' % (lab, x)
        return '(begin (display %s) (write %s) (newline))' % (lab, x)

    def s_for_each(self, d):
        a = Var(self.fresh('a'), INT)
        l = self.expr(ILIST, d - 1)
        if self.chance(0.3):
            b = Var(self.fresh('b'), INT)
            l2 = self.expr(ILIST, d - 1)
            with self.bound(a, b):
                s = self.repeat(lambda: self.stmt(min(d - 1, 2)) + ' ' + self.stmt(min(d - 1, 2)), LMAX)
            return '(for-each (lambda (%s %s) %s) %s %s)' % (a.name, b.name, s, l, l2)
        with self.bound(a):
            s = self.repeat(lambda: self.stmt(min(d - 1, 2)), LMAX)
        if self.chance(0.2):
            return '(vector-for-each (lambda (%s) %s) %s)' % (a.name, s, self.expr(VEC, d - 1))
        return '(for-each (lambda (%s) %s) %s)' % (a.name, s, l)

    def s_do(self, d):
        i = Var(self.fresh('i'), INT, mutable=False)
        k = self.r.randint(0, 6)
        with self.bound(i):
            s = self.repeat(lambda: self.stmt(min(d - 1, 2)), k + 1)
        return '(do ((%s 0 (+ %s 1))) ((>= %s %d)) %s)' % (i.name, i.name, i.name, k, s)

    # ------------------------------------------------------- top-level pieces

    def global_var(self):
        ty = self.choice([INT, INT, ILIST, ILIST, STR, DICT, VEC, FLOAT, BOOL, SLIST, FN1, PRED])
        name = self.fresh('g')
        if isinstance(ty, tuple):
            txt, callc = self.fn_expr(ty, 3)
            self.scope.append(Var(name, ty, cost=callc, mutable=False))
            return '(define %s (guard (e (#t %s)) %s))' % (name, 'abs' if ty == FN1 else 'odd?', txt)
        txt = self.fit(lambda: self.expr(ty, 3), FORM_BUDGET // 4, lambda: self.literal(ty))
        fallback = self.literal(ty)
        self.scope.append(Var(name, ty, LMAX, ty in SETTABLE))
        return '(define %s (guard (e (#t %s)) %s))' % (name, fallback, txt)

    def function(self):
        """One or two top-level function definitions."""
        return self.pick([
            (5, self.f_plain),
            (1, self.f_variadic),
            (2, self.f_recursive),
            (1, self.f_list_recursive),
            (1, self.f_fib),
            (1, self.f_mutual),
            (2, self.f_deep_error),
            (2, self.f_fail_at),
            (2, self.f_counter),
            (1, self.f_adder),
        ])

    def define_fn(self, make, fallback):
        """Text of a function body and the cost of one call; the meter is
        left as it was (defining a function runs nothing)."""
        body, used = self.measure(lambda: self.fit(make, FN_BUDGET, fallback))
        self.spend(-used)
        return body, used + 1

    def f_plain(self):
        name = self.fresh('f')
        params = []
        for _ in range(self.r.randint(0, 3)):
            ty = self.choice([INT, INT, INT, ILIST, STR, FLOAT, DICT])
            params.append(Var(self.fresh('p'), ty, 6, ty in SETTABLE))
        ret = self.choice([INT, INT, ILIST, STR, BOOL, ANY, FLOAT])

        def make():
            parts, inner = [], []
            with self.bound(*params):
                try:
                    for _ in range(self.choice([0, 0, 1, 2])):
                        v, txt = self.new_binding(3, 6, ty=self.choice([INT, ILIST, STR]))
                        v.name = self.fresh('w')
                        parts.append('(define %s %s)' % (v.name, txt))
                        inner.append(v)
                        self.scope.append(v)
                    parts.append(self.body(ret, 3, 6))
                finally:
                    del self.scope[len(self.scope) - len(inner):]
            return ' '.join(parts)

        body, cost = self.define_fn(make, lambda: self.literal(ret, 6))
        self.fns.append(Fn(name, [p.ty for p in params], ret, cost, size=6))
        return '(define (%s) %s)' % (' '.join([name] + [p.name for p in params]), body)

    def f_variadic(self):
        name, rest = self.fresh('f'), self.fresh('rest')
        if self.chance(0.5):
            a = self.fresh('p')
            with self.bound(Var(a, INT), Var(rest, ILIST, 3)):
                body, cost = self.define_fn(lambda: self.expr(INT, 3), lambda: a)
            self.fns.append(Fn(name, [INT], INT, cost, rest=True))
            return '(define (%s %s . %s) %s)' % (name, a, rest, body)
        with self.bound(Var(rest, ILIST, 3)):
            body, cost = self.define_fn(lambda: self.expr(ILIST, 3, 6), lambda: rest)
        self.fns.append(Fn(name, [], ILIST, cost, rest=True, size=6))
        return '(define (%s . %s) %s)' % (name, rest, body)

    def f_recursive(self):
        name, n_ = self.fresh('rec'), self.fresh('n')
        nv = Var(n_, INT, mutable=False)
        if self.chance(0.5):   # not a tail call
            with self.bound(nv):
                base, bc = self.define_fn(lambda: self.expr(INT, 2), lambda: '0')
                step, sc = self.define_fn(lambda: self.expr(INT, 2), lambda: n_)
            op = self.choice(['+', '-', '*', 'max'])
            self.fns.append(Fn(name, [INT], INT, (REC_DEPTH + 1) * (bc + sc + 5), small=True))
            return '(define (%s %s) (if (<= %s 0) %s (%s (%s (- %s 1)) %s)))' % (
                name, n_, n_, base, op, name, n_, step)
        acc = self.fresh('acc')
        with self.bound(nv, Var(acc, INT)):
            step, sc = self.define_fn(lambda: self.expr(INT, 2), lambda: acc)
        self.fns.append(Fn(name, [INT, INT], INT, (REC_DEPTH + 1) * (sc + 5), small=True))
        return '(define (%s %s %s) (if (<= %s 0) %s (%s (- %s 1) %s)))' % (
            name, n_, acc, n_, acc, name, n_, step)

    def f_list_recursive(self):
        name, l, x = self.fresh('walk'), self.fresh('l'), self.fresh('x')
        with self.bound(Var(x, INT)):
            f, fc = self.define_fn(lambda: self.expr(INT, 2), lambda: x)
        if self.chance(0.5):
            self.fns.append(Fn(name, [ILIST], ILIST, LMAX * (fc + 5)))
            return "(define (%s %s) (if (null? %s) '() (cons (let ((%s (car %s))) %s) (%s (cdr %s)))))" % (
                name, l, l, x, l, f, name, l)
        self.fns.append(Fn(name, [ILIST], INT, LMAX * (fc + 5)))
        return '(define (%s %s) (if (null? %s) 0 (+ (let ((%s (car %s))) %s) (%s (cdr %s)))))' % (
            name, l, l, x, l, f, name, l)

    def f_fib(self):
        name, n_ = self.fresh('fib'), self.fresh('n')
        self.fns.append(Fn(name, [INT], INT, 3 * 400, small=True))
        return '(define (%s %s) (if (< %s 2) %s (+ (%s (- %s 1)) (%s (- %s 2)))))' % (
            name, n_, n_, n_, name, n_, name, n_)

    def f_mutual(self):
        ev, od, n_ = self.fresh('ev'), self.fresh('od'), self.fresh('n')
        self.fns.append(Fn(ev, [INT], BOOL, 3 * REC_DEPTH, small=True))
        self.fns.append(Fn(od, [INT], BOOL, 3 * REC_DEPTH, small=True))
        return ('(define (%s %s) (if (= %s 0) #t (%s (- %s 1))))\n'
                '(define (%s %s) (if (= %s 0) #f (%s (- %s 1))))') % (
                    ev, n_, n_, od, n_, od, n_, n_, ev, n_)

    def f_deep_error(self):
        name, n_ = self.fresh('deep'), self.fresh('n')
        err = self.choice(ERRORS).format(x=n_)
        op = self.choice(['+ 1', '* 2', '- 3', 'list'])
        self.deep_fns.append(name)
        self.fns.append(Fn(name, [INT], ANY if op == 'list' else INT, 5 * REC_DEPTH, small=True))
        return '(define (%s %s) (if (<= %s 0) %s (%s (%s (- %s 1)))))' % (
            name, n_, n_, err, op, name, n_)

    def f_fail_at(self):
        name, x = self.fresh('failat'), self.fresh('x')
        err = self.choice(ERRORS).format(x=x)
        self.fail_fns.append(name)
        self.fns.append(Fn(name, [INT], INT, 5))
        return '(define (%s %s) (if (= %s %d) %s (* %s 2)))' % (
            name, x, x, self.r.randint(0, 5), err, x)

    def f_counter(self):
        maker, inst, k = self.fresh('make-counter'), self.fresh('c'), self.fresh('k')
        start, step = self.r.randint(-3, 10), self.choice([1, 2, 5, -1, 1000000000000])
        if self.chance(0.5):
            self.scope.append(Var(inst, THUNK, cost=3, mutable=False))
            return ('(define (%s) (let ((%s %d)) (lambda () (set! %s (+ %s %d)) %s)))\n'
                    '(define %s (%s))') % (maker, k, start, k, k, step, k, inst, maker)
        self.scope.append(Var(inst, FN1, cost=3, mutable=False))
        return ('(define (%s %s) (lambda (x) (set! %s (+ %s x)) %s))\n'
                '(define %s (%s %d))') % (maker, k, k, k, k, inst, maker, start)

    def f_adder(self):
        name, k, x = self.fresh('make-adder'), self.fresh('k'), self.fresh('x')
        self.fns.append(Fn(name, [INT], FN1, 2, size=3))
        return '(define (%s %s) (lambda (%s) (%s %s %s)))' % (
            name, k, x, self.choice(['+', '*', '-']), x, k)

    # ------------------------------------------------------------- test forms

    def catch_all(self, x):
        return "(guard (e (#t (list 'caught (error-kind e)))) %s)" % x

    def test_form(self):
        return self.pick([
            (12, self.t_show),
            (3, self.t_block),
            (2, self.t_set_global),
            (6, self.t_unwind),
            (1, self.t_arity_message),
            (1, self.t_map_message),
            (2, self.t_raise),
            (2, self.t_counter),
            (1, self.t_deep),
            (1, self.t_shadow),
            (2, self.t_guard_loop),
            (1, self.t_tail),
            (2, self.t_stress),
            (1, self.h_hot),
            (1, self.h_cps),
            (1, self.r_redef),
        ])

    def t_show(self):
        t = self.choice(PRINTABLE + [ANY, ANY, INT, ILIST])
        x = self.fit(lambda: self.expr(t, self.r.randint(2, 5)), FORM_BUDGET,
                     lambda: self.literal(t))
        if self.chance(0.2):
            return '(print %s " " %s)' % (self.label(), self.catch_all(x))
        return '(show %s %s)' % (self.label(), self.catch_all(x))

    def t_block(self):
        def make():
            return ' '.join(self.stmt(3) for _ in range(self.r.randint(1, 4)))
        body = self.fit(make, FORM_BUDGET, lambda: '(print "  empty")')
        lab = self.label()
        return "(guard (e (#t (show %s (list 'caught (error-kind e))))) (print %s) %s)" % (lab, lab, body)

    def t_set_global(self):
        vs = [v for v in self.visible() if v.name.startswith('g') and v.mutable and v.ty in SETTABLE]
        if not vs:
            return self.t_show()
        v = self.choice(vs)
        x = self.fit(lambda: self.expr(v.ty, 3, v.size), FORM_BUDGET, lambda: self.literal(v.ty))
        lab = self.label()
        return "(guard (e (#t (show %s (list 'caught (error-kind e) %s)))) (set! %s %s) (show %s %s))" % (
            lab, v.name, v.name, x, lab, v.name)

    def small_list(self):
        return '(list %s)' % ' '.join(str(self.r.randint(0, 6)) for _ in range(self.r.randint(2, 6)))

    def failing_fn(self):
        """An int -> int procedure that fails on one argument in 0..5."""
        if self.fail_fns and self.chance(0.6):
            return self.choice(self.fail_fns)
        x = self.fresh('x')
        err = self.choice(ERRORS).format(x=x)
        return '(lambda (%s) (if (= %s %d) %s (+ %s 1)))' % (x, x, self.r.randint(0, 5), err, x)

    def deep_call(self):
        """A call that fails at the bottom of a recursion."""
        if self.deep_fns and self.chance(0.6):
            return '(%s %d)' % (self.choice(self.deep_fns), self.r.randint(0, 30))
        loop, n_ = self.fresh('down'), self.fresh('n')
        err = self.choice(ERRORS).format(x=n_)
        return '(let %s ((%s %d)) (if (= %s 0) %s (+ 1 (%s (- %s 1)))))' % (
            loop, n_, self.r.randint(0, 40), n_, err, loop, n_)

    def after(self):
        """A call whose result shows whether the evaluator is still intact."""
        xs = self.small_list()
        return self.choice([
            '(map (lambda (x y) (+ x y)) %s %s)' % (xs, self.small_list()),
            '(rest %s)' % xs,
            '(map + %s (rest %s))' % (xs, xs),
            '(list (car %s) (cdr %s))' % (xs, xs),
            '(apply max %s)' % xs,
            "(map (lambda (x) (list x 'ok)) (rest %s))" % xs,
            '(fold-left - 100 %s)' % xs,
            '(vector-map - (vector 1 2 3))',
            '(let ((v (vector 0 0))) (vector-set! v 1 %d) v)' % self.r.randint(0, 9),
            '(string-append "a" (number->string %d) "b")' % self.r.randint(0, 99),
        ])

    def t_unwind(self):
        """Errors thrown deep inside callbacks and nested calls, caught, then
        calls that must still see the right arguments."""
        lab, e, xs, bad = self.label(), self.fresh('e'), self.small_list(), self.failing_fn()
        handler = "(list 'caught (error-kind %s))" % e
        x = self.choice([
            lambda: '(guard (%s (#t %s)) (map %s %s))' % (e, handler, bad, xs),
            lambda: '(guard (%s (#t %s)) (for-each (lambda (x) (print "  item " x) (%s x)) %s))' % (
                e, handler, bad, xs),
            lambda: '(+ 1 (guard (%s (#t 100)) (+ 2 (* 3 %s))) (length %s))' % (e, self.deep_call(), xs),
            lambda: '(list 1 2 (guard (%s (#t %s)) (list 3 4 %s 6)) 7 (map - %s))' % (
                e, handler, self.deep_call(), xs),
            lambda: "(map (lambda (x) (guard (%s ((error? %s) (error-kind %s)) (else (list 'r %s))) (%s x))) %s)" % (
                e, e, e, e, bad, xs),
            lambda: "(map (lambda (row) (guard (%s (#t 'bad)) (apply + (map %s row)))) (list %s %s %s))" % (
                e, bad, self.small_list(), self.small_list(), self.small_list()),
            lambda: '(guard (%s (#t %s)) (fold-left (lambda (acc x) (+ acc (%s x))) 0 %s))' % (
                e, handler, bad, xs),
            lambda: '(guard (%s (#t %s)) (filter (lambda (x) (odd? (%s x))) %s))' % (e, handler, bad, xs),
            lambda: '(guard (%s (#t %s)) (vector-map %s (list->vector %s)))' % (e, handler, bad, xs),
            lambda: ('(let ((log (list))) (guard (%s (#t (list (reverse log) (error-kind %s)))) '
                     '(for-each (lambda (x) (set! log (cons (%s x) log))) %s) (reverse log)))' % (e, e, bad, xs)),
            lambda: ("(guard (%s (#t (list 'outer (error-kind %s)))) "
                     "(guard (%s ((string? %s) 'inner)) (map (lambda (x) (list x (%s x))) %s)))" % (
                         e, e, e, e, bad, xs)),
            lambda: ("(let loop ((i 0) (acc '())) (if (= i 6) (reverse acc) "
                     '(loop (+ i 1) (cons (guard (%s (#t (error-kind %s))) (%s i)) acc))))' % (e, e, bad)),
            lambda: ('(let* ((a (guard (%s (#t (error-kind %s))) (%s 3))) (b %s) (c (%s 0))) (list a b c))'
                     % (e, e, bad, self.after(), '(lambda (z) (* z 10))')),
            lambda: ('(apply + (map (lambda (x) (guard (%s ((error? %s) 1000) (else 2000)) (* 10 (%s x)))) %s))'
                     % (e, e, bad, xs)),
            lambda: '(guard (%s (#t %s)) (member 99 %s (lambda (a b) (= a (%s b)))))' % (e, handler, xs, bad),
            lambda: '(guard (%s (#t %s)) (string-index "abcdef" (lambda (ch) (odd? (%s (- (char->integer ch) 97))))))' % (
                e, handler, bad),
            lambda: '(guard (%s (#t %s)) (apply (lambda (a . r) (map %s (cons a r))) %s))' % (e, handler, bad, xs),
            lambda: '(guard (%s (#t %s)) (list {:a 0 :b (%s %d) :c 2} (dict :a (%s 0) :b (%s 1) :c (%s 2))))' % (
                e, handler, bad, self.r.randint(0, 5), bad, bad, bad),
            lambda: '(guard (%s (#t %s)) (list %s (%s %d) %s))' % (
                e, handler, ' '.join(str(i) for i in range(self.choice([10, 100, 300]))), bad,
                self.r.randint(0, 5), ' '.join(str(i) for i in range(self.choice([5, 50])))),
            lambda: '(guard (%s (#t %s)) (vector-for-each (lambda (x) (print "  v " (%s x))) (list->vector %s)))' % (
                e, handler, bad, xs),
        ])()
        self.spend(2000)
        return '(show %s (list %s %s %s))' % (lab, self.catch_all(x), self.after(), self.after())

    def t_arity_message(self):
        lab, e = self.label(), self.fresh('e')
        wrap = "(guard (%s ((eq? (error-kind %s) 'arity-error) (error-message %s)) (else (error-kind %s))) %%s)" % (
            e, e, e, e)
        fns = [f for f in self.fns if f.params or not f.rest]
        if fns and self.chance(0.6):
            f = self.choice(fns)
            k = len(f.params) - 1 if f.rest else len(f.params) + self.choice([-1, 1, 2])
            if k < 0:
                k = len(f.params) + 1
            call = '(%s)' % ' '.join([f.name] + [str(self.r.randint(0, 5)) for _ in range(k)])
            self.spend(f.cost)
        elif self.chance(0.5):
            call = self.choice(['((lambda (x) x))', '((lambda (x y) x) 1)', '((lambda () 1) 2)',
                                '((lambda (a b . r) a) 1)', '((fn (x) x) 1 2 3)'])
        else:
            loop = self.fresh('loop')
            call = '(let %s ((i 0)) (if (= i 0) (%s 1 2) i))' % (loop, loop)
        return '(show %s %s)' % (lab, wrap % call)

    def t_map_message(self):
        return '(show %s (guard (e (#t (list (error-kind e) (error-message e)))) (map %s %d)))' % (
            self.label(), self.choice(['car', '(lambda (x) x)', 'abs', 'list']), self.r.randint(-9, 99))

    def t_raise(self):
        lab = self.label()
        payload = self.choice(["'sym", '42', '"text"', "(list 'a 1 \"b\")", '{:code 7}', '#f', 'nil',
                               '(vector 1 2)', '3.5', '#\\c', ':kw'])
        inner = self.choice([
            '(raise %s)' % payload,
            '(error "msg" %s)' % payload,
            '(error "msg with \\"quotes\\"")',
            "(guard (e ((string? e) 'inner)) (raise %s))" % payload,
            '(guard (e (#t (raise e))) (error "again" %s))' % payload,
            "(guard (e (#t (raise (list 'wrapped (error-kind e))))) (car %s))" % payload,
            '(map (lambda (x) (if (= x 2) (raise %s) x)) (list 1 2 3))' % payload,
        ])
        handler = self.choice([
            "((symbol? e) (list 'symbol e)) ((string? e) (list 'string e)) "
            "((error? e) (list 'error (error-kind e))) (else (list 'other (error-kind e) e))",
            "((error? e) => (lambda (b) (list b (error-kind e) (if (eq? (error-kind e) 'user-error) "
            "(list (error-message e) (error-payload e)) '-)))) "
            "(else (list 'raised (error-payload e) (error-message e)))",
        ])
        return '(show %s %s)' % (lab, self.catch_all('(guard (e %s) %s)' % (handler, inner)))

    def t_counter(self):
        lab = self.label()
        thunks = self.vars_of(THUNK)
        accs = [v for v in self.vars_of(FN1) if v.cost <= 3]
        if thunks:
            c = self.choice(thunks).name
            return '(show %s (list (%s) (%s) (begin (%s) (%s)) (map (lambda (x) (%s)) (list 1 2))))' % (
                lab, c, c, c, c, c)
        if accs:
            a = self.choice(accs).name
            return '(show %s %s)' % (lab, self.catch_all('(list (%s 1) (%s 10) (map %s (list 1 2 3)))' % (a, a, a)))
        k = self.fresh('k')
        return ('(show %s (let ((%s 0)) (let ((inc (lambda () (set! %s (+ %s 1)) %s)) (peek (lambda () %s))) '
                '(inc) (inc) (list (peek) (inc) (peek)))))') % (lab, k, k, k, k, k)

    def t_deep(self):
        lab = self.label()
        depth = self.choice([1000, 5000, 20000])
        self.spend(depth * 3)
        if self.chance(0.5):
            return '(show %s (let f ((n %d)) (if (= n 0) 0 (+ 1 (f (- n 1))))))' % (lab, depth)
        return ("(show %s (let f ((n %d)) (if (= n 0) '() (let ((r (f (- n 1)))) "
                '(if (< (length r) 3) (cons n r) r)))))' % (lab, depth // 10))

    def t_shadow(self):
        return '(show %s %s)' % (self.label(), self.catch_all(self.choice([
            '(let ((if (lambda (a b c) (+ a b c)))) (if 1 2 3))',
            '(let ((list (lambda args (length args)))) (list 1 2 3))',
            '(let ((car cdr)) (car (list 1 2 3)))',
            '(let ((when (lambda (x y) (* x y)))) (when 6 7))',
            "(let ((and (lambda args 'shadowed))) (and #f (car 5)))",
            '((lambda (define) (+ define 1)) 41)',
            '(let ((quote (lambda (x) (* x 2)))) (quote 21))',
        ])))

    def t_guard_loop(self):
        lab, k, bad = self.label(), self.choice([100, 500, 1000]), self.failing_fn()
        self.spend(k * 20 + 4000)
        if self.chance(0.5):
            x = ('(let loop ((i 0) (n 0)) (if (= i %d) n (loop (+ i 1) '
                 '(+ n (guard (e (#t 1)) (%s (modulo i 7)) 0)))))' % (k, bad))
        else:
            x = ('(begin (do ((i 0 (+ i 1))) ((= i %d)) (guard (e (#t #f)) (map %s (list 0 1 2 3 4 5)))) '
                 '(let f ((n 2000)) (if (= n 0) 0 (+ 1 (f (- n 1))))))' % (k, bad))
        return '(show %s (list %s %s))' % (lab, self.catch_all(x), self.after())

    def t_tail(self):
        lab, n = self.label(), self.choice([10000, 50000, 100000])
        self.spend(n * 3)
        return self.choice([
            '(show %s (let loop ((i 0) (acc 0)) (if (< i %d) (loop (+ i 1) (+ acc (modulo i 7))) acc)))' % (lab, n),
            '(show %s (do ((i 0 (+ i 1)) (s 0 (+ s i))) ((= i %d) s)))' % (lab, n),
            ('(show %s (letrec ((ev? (lambda (n) (if (= n 0) #t (od? (- n 1))))) '
             '(od? (lambda (n) (if (= n 0) #f (ev? (- n 1)))))) (list (ev? %d) (od? %d))))') % (lab, n, n + 1),
            "(show %s (let loop ((i %d)) (cond ((= i 0) 'done) (else (loop (- i 1))))))" % (lab, n),
            '(show %s (let loop ((i 0)) (if (< i %d) (apply loop (list (+ i 1))) i)))' % (lab, n // 10),
        ])

    def t_stress(self):
        """Shapes that stress a compiler rather than an evaluator: many
        arguments, locals and captured variables, long jumps, big constant
        pools, deep nesting, tail calls from every tail position, recursion
        100,000 deep, huge argument lists."""
        lab = self.label()
        k = self.r.randint(0, 9)
        if k == 0:
            n = self.choice([50, 254, 255, 256, 257, 300])
            op = self.choice(['+', 'list', 'max', 'vector'])
            self.spend(n)
            return '(show %s (let ((r (%s %s))) (if (number? r) r (list (length (if (vector? r) (vector->list r) r))))))' % (
                lab, op, ' '.join(str(i) for i in range(n)))
        if k == 1:
            n = self.choice([100, 255, 256, 257, 300])
            binds = ' '.join('(s%d %s)' % (i, '1' if i == 0 else '(+ s%d %d)' % (i - 1, i % 7)) for i in range(n))
            return '(show %s (let* (%s) (list s0 s%d s%d)))' % (lab, binds, n // 2, n - 1)
        if k == 2:
            n = self.choice([50, 255, 256, 300])
            binds = ' '.join('(u%d %d)' % (i, i * 3 % 11) for i in range(n))
            body = ' '.join('u%d' % i for i in range(n))
            return ('(show %s (let (%s) (let ((f (lambda (z) (set! u%d (+ u%d z)) (+ %s)))) (list (f 1) (f 2) u%d))))'
                    % (lab, binds, n - 1, n - 1, body, n - 1))
        if k == 3:
            name, n = self.fresh('big'), self.choice([50, 150])
            clauses = ' '.join("((= x %d) 'c%d)" % (i, i) for i in range(n))
            xs = ' '.join(str(self.r.randint(-1, n)) for _ in range(4))
            return '(define (%s x) (cond %s (else (list (quote other) x))))\n(show %s (map %s (list %s)))' % (
                name, clauses, lab, name, xs)
        if k == 4:
            n = self.choice([300, 1000])
            items = ' '.join('"s%d"' % i for i in range(n))
            return '(show %s (let ((v (vector %s))) (list (vector-ref v 0) (vector-ref v %d) (vector-length v))))' % (
                lab, items, self.r.randrange(n))
        if k == 5:
            n = self.choice([100, 300])
            op = self.choice(['+ 1', '- 2', '* 1', 'list'])
            return '(show %s %s)' % (lab, '(%s ' % op * n + '0' + ')' * n)
        if k == 6:
            name, n = self.fresh('tailpos'), self.choice([100000, 300000])
            self.spend(5 * n)
            shape = self.choice([
                "(cond ((= n 0) 'done) (else (and #t (or #f (when #t (%s (- n 1)))))))",
                "(case (if (= n 0) 0 1) ((0) 'done) (else (unless #f (let () (begin (%s (- n 1)))))))",
                "(if (= n 0) 'done (guard (e (#t (%s (- n 1)))) (raise 'next)))",
                "(do ((i 0 (+ i 1))) ((= i 1) (if (= n 0) 'done (%s (- n 1)))))",
                "(if (= n 0) 'done (apply %s (list (- n 1))))",
                "(cond ((= n 0) 'done) ((- n 1) => %s))",
                "(let* ((m (- n 1))) (letrec ((g (lambda () (if (< m 0) 'done (%s m))))) (g)))",
            ])
            return '(define (%s n) %s)\n(show %s (%s %d))' % (name, shape % name, lab, name, n)
        if k == 7:
            n = self.choice([10000, 100000])
            self.spend(4 * n)
            if self.chance(0.5):
                return '(show %s (let f ((n %d)) (if (= n 0) 0 (+ 1 (f (- n 1))))))' % (lab, n)
            return self.choice([
                "(show %s (let f ((n %d)) (if (= n 0) 0 (car (map (lambda (x) (+ x (f (- n 1)))) '(1))))))",
                '(show %s (let f ((n %d)) (if (= n 0) 0 (fold-left (lambda (a x) (+ a x (f (- n 1)))) 0 (list 1)))))',
            ]) % (lab, 10000)
        if k == 8:
            n = self.choice([1000, 100000])
            self.spend(3 * n)
            return '(show %s (list (length (apply list (iota %d))) (apply + (iota %d)) (apply max 0 (iota %d))))' % (
                lab, n, n, n)
        depth = self.choice([5, 20, 60])       # closures nested depth deep, each assigning outward
        inner = '(list x0 x%d)' % depth
        for i in range(depth, 0, -1):
            inner = '((lambda (x%d) (set! x%d (+ x%d %d)) %s) (+ x%d 1))' % (i, i - 1, i - 1, i, inner, i - 1)
        return '(show %s (let ((x0 0)) (list %s x0)))' % (lab, inner)

    # ------------------------------------------------- higher-order shapes
    #
    # Programs of the higher-order shape (and some forms of the others) are
    # made of the pieces below.  Each piece is a random composition, not a
    # fixed text: how deep closures nest, how many parameters they take,
    # which variables they capture, where `set!` happens, whether a
    # procedure is passed, returned, stored in a list, vector or dict, or
    # called in tail position are all drawn afresh.

    def hsig(self, k=None, ret=INT):
        """The signature of an int procedure of k (random: 0..3) int parameters."""
        if k is None:
            k = self.choice([0, 1, 1, 1, 2, 2, 3])
        return ('fn', (INT,) * k, ret)

    def hcall(self, f, sig, d, tail_ok=False):
        """A call of the procedure text f with arguments of sig: direct,
        through apply (spread or not), or through a one-element list."""
        args = [self.expr(t, max(d - 1, 0)) if self.chance(0.4) else self.leaf(t) for t in sig[1]]
        x = self.r.random()
        if x < 0.7:
            return form(f, *args)
        if x < 0.8:
            return '(apply %s (list %s))' % (f, ' '.join(args))
        if x < 0.9 and args:
            return '(apply %s %s)' % (' '.join([f] + args[:-1]), '(list %s)' % args[-1])
        return '((car (list %s)) %s)' % (f, ' '.join(args))

    def hproc(self, sig, d, pure=False):
        """(text, cost of one call) of a procedure value of type sig, built
        by composing closures.  pure: evaluating the text itself (not calling
        the procedure) has no effect and cannot fail."""
        _, params, ret = sig
        k = len(params)
        if d <= 0:
            if pure:
                return self.lambda_expr(params, ret, 1)
            return self.fn_expr(sig, 1)
        opts = [(3, lambda: self.lambda_expr(params, ret, min(d, 3))),
                (3, lambda: self.hp_capture(sig, d, pure)),
                (2, lambda: self.hp_state(sig, d, pure)),
                (2, lambda: self.hp_select(sig, d, pure)),
                (1, lambda: self.hp_if(sig, d, pure)),
                (1, lambda: self.hp_adapt(sig, d, pure)),
                (1, lambda: self.hp_letrec(sig, d, pure)),
                (1, lambda: self.hp_returning(sig, d, pure))]
        if not pure:
            opts.append((2, lambda: self.fn_expr(sig, d)))
        if ret == INT and k >= 1:
            opts.append((2, lambda: self.hp_compose(sig, d, pure)))
        if ret == INT and k <= 2:
            opts.append((2, lambda: self.hp_curry(sig, d, pure)))
        return self.pick(opts)

    def init(self, ty, d, pure):
        """The value a closure captures: a leaf if pure, else anything."""
        if pure or self.chance(0.5):
            return self.leaf(ty)
        return self.expr(ty, max(d - 1, 0))

    def hp_capture(self, sig, d, pure):
        """(let ((c1 e1) ...) PROC): variables captured by the closure."""
        vs, binds = [], []
        loud = self.r.randrange(3)
        for i in range(self.r.randint(1, 3)):
            ty = self.choice([INT, INT, INT, ILIST, STR])
            v = Var(self.fresh('c'), ty, LMAX, ty in SETTABLE)
            binds.append('(%s %s)' % (v.name, self.init(ty, d, pure or i != loud)))
            vs.append(v)
        with self.bound(*vs):
            p, cost = self.hproc(sig, d - 1, pure)
        return '(let (%s) %s)' % (' '.join(binds), p), cost

    def hp_state(self, sig, d, pure):
        """A closure over a variable it changes with set! on every call."""
        s = Var(self.fresh('s'), INT)
        params = [Var(self.fresh('a'), INT) for _ in sig[1]]
        init = self.init(INT, d, pure)
        with self.bound(s, *params):
            upd = self.expr(INT, min(d, 2))
            res = self.expr(sig[2], min(d, 2))
        return ('(let ((%s %s)) (lambda (%s) (set! %s (modulo %s 100003)) %s))' % (
            s.name, init, ' '.join(p.name for p in params), s.name, upd, res), self.cost_guess(d))

    def cost_guess(self, d):
        return 20 + 20 * max(d, 0)

    def hp_select(self, sig, d, pure):
        """A procedure taken from a list, vector, dict or alist."""
        m = self.r.randint(2, 4)
        ps, costs = [], []
        shape = self.r.randrange(5)
        for _ in range(m):
            p, c = self.hproc(sig, d - 1, pure or shape == 2)
            ps.append(p)
            costs.append(c)
        i = self.r.randrange(m)
        if shape == 0:
            txt = '(vector-ref (vector %s) %d)' % (' '.join(ps), i)
        elif shape == 1:
            txt = '(list-ref (list %s) %d)' % (' '.join(ps), i)
        elif shape == 2:    # dict literal: no part may act (pure above)
            txt = '(get {%s} %s)' % (' '.join(':k%d %s' % (j, p) for j, p in enumerate(ps)), ':k%d' % i)
        elif shape == 3:
            txt = '(cdr (assv %d (list %s)))' % (i, ' '.join('(cons %d %s)' % (j, p) for j, p in enumerate(ps)))
        else:
            txt = '(car (list-tail (list %s) %d))' % (' '.join(ps), i)
        return txt, max(costs) + 3

    def hp_if(self, sig, d, pure):
        a, ca = self.hproc(sig, d - 1, pure)
        b, cb = self.hproc(sig, d - 1, pure)
        test = self.leaf(BOOL) if pure else self.expr(BOOL, min(d, 2))
        return '(if %s %s %s)' % (test, a, b), max(ca, cb) + 1

    def hp_adapt(self, sig, d, pure):
        """The same procedure seen through a variadic or apply wrapper."""
        p, c = self.hproc(sig, d - 1, pure)
        ps = [self.fresh('a') for _ in sig[1]]
        x = self.r.randrange(4)
        if x == 0:
            args = self.fresh('args')
            return '(lambda %s (apply %s %s))' % (args, p, args), c + 3
        if x == 1 and ps:
            rest = self.fresh('rest')
            return '(lambda (%s . %s) (apply %s %s %s))' % (ps[0], rest, p, ps[0], rest), c + 3
        if x == 2:
            return '(lambda (%s) (apply %s (list %s)))' % (' '.join(ps), p, ' '.join(ps)), c + 3
        f = self.fresh('f')     # eta, the procedure bound once
        return '(let ((%s %s)) (lambda (%s) (%s %s)))' % (f, p, ' '.join(ps), f, ' '.join(ps)), c + 2

    def hp_compose(self, sig, d, pure):
        """f after g, by an inline compose or the program's helpers."""
        g, cg = self.hproc(sig, d - 1, pure)
        f, cf = self.hproc(FN1, d - 1, pure)
        ps = ' '.join(self.fresh('a') for _ in sig[1])
        if len(sig[1]) == 1 and self.chance(0.4):
            self.need_helpers = True
            if self.chance(0.5):
                return '(compose2 %s %s)' % (f, g), cf + cg + 4
            h, ch = self.hproc(FN1, d - 1, pure)
            return '(compose %s %s %s)' % (h, f, g), cf + cg + ch + 12
        return '((lambda (f g) (lambda (%s) (f (g %s)))) %s %s)' % (ps, ps, f, g), cf + cg + 3

    def hp_curry(self, sig, d, pure):
        """A procedure of k+1 parameters with its first argument fixed."""
        k = len(sig[1])
        big = ('fn', (INT,) * (k + 1), sig[2])
        p, c = self.hproc(big, d - 1, pure)
        x = self.init(INT, d, pure)
        ps = ' '.join(self.fresh('a') for _ in range(k))
        if self.chance(0.35):
            self.need_helpers = True
            return '(curry %s %s)' % (p, x), c + 8
        return '((lambda (f x) (lambda (%s) (f x %s))) %s %s)' % (ps, ps, p, x), c + 3

    def hp_letrec(self, sig, d, pure):
        """A closure over a recursive (letrec or internal define) helper."""
        h, n_, acc = self.fresh('h'), self.fresh('n'), self.fresh('acc')
        ps = [Var(self.fresh('a'), INT) for _ in sig[1]]
        depth = self.r.randint(0, 30)
        with self.bound(Var(n_, INT, mutable=False), Var(acc, INT)):
            step = self.expr(INT, 1)
        with self.bound(*ps):
            arg = self.leaf(INT)
        helper = '(lambda (%s %s) (if (<= %s 0) %s (%s (- %s 1) (modulo %s 100003))))' % (
            n_, acc, n_, acc, h, n_, step)
        call = '(%s %d %s)' % (h, depth, arg)
        lam = '(lambda (%s) %s)' % (' '.join(p.name for p in ps), call)
        if sig[2] == BOOL:
            lam = '(lambda (%s) (odd? %s))' % (' '.join(p.name for p in ps), call)
        if self.chance(0.5):
            return '(letrec ((%s %s)) %s)' % (h, helper, lam), 6 * depth + 10
        return '(let () (define %s %s) %s)' % (h, helper, lam), 6 * depth + 10

    def hp_returning(self, sig, d, pure):
        """Closures that return closures: ((M x1) x2) ... down to sig."""
        levels = self.r.randint(1, 3)
        outer = [Var(self.fresh('o'), INT, mutable=self.chance(0.5)) for _ in range(levels)]
        with self.bound(*outer):
            p, c = self.hproc(sig, d - 1, True)
        txt = p
        for v in reversed(outer):
            txt = '(lambda (%s) %s)' % (v.name, txt)
        for v in outer:
            txt = '(%s %s)' % (txt, self.init(INT, d, pure))
        return txt, c + 2

    # -- the helpers that compositions may use

    HELPERS = [
        '(define (compose2 f g) (lambda (x) (f (g x))))',
        '(define (compose . fs) (if (null? fs) (lambda (x) x) '
        '(let ((f (car fs)) (g (apply compose (cdr fs)))) (lambda (x) (f (g x))))))',
        '(define (curry f . early) (lambda late (apply f (append early late))))',
        '(define (flip f) (lambda (a b) (f b a)))',
        '(define (iterate f n x) (if (<= n 0) x (iterate f (- n 1) (f x))))',
    ]

    # -- test forms

    def h_show(self, x):
        return '(show %s %s)' % (self.label(), self.catch_all(x))

    def h_procs(self):
        """Random procedures applied directly, in tail position, through
        apply and through map, fold-left and vector-map."""
        sig = self.hsig()
        p, c = self.hproc(sig, self.r.randint(1, 4))
        f = Var(self.fresh('pf'), sig, cost=c, mutable=False)
        uses = []
        with self.bound(f):
            for _ in range(self.r.randint(1, 4)):
                k = len(sig[1])
                x = self.r.randrange(5)
                if x == 0 and k == 1:
                    uses.append('(map %s %s)' % (f.name, self.expr(ILIST, 2)))
                elif x == 1 and k == 2:
                    uses.append('(fold-left %s %s %s)' % (f.name, self.leaf(INT), self.expr(ILIST, 2)))
                elif x == 2:
                    lp, i = self.fresh('loop'), self.fresh('i')
                    n = self.r.randint(1, 30)
                    uses.append('(let %s ((%s 0) (r 0)) (if (= %s %d) r (%s (+ %s 1) %s)))' % (
                        lp, i, i, n, lp, i, self.hcall(f.name, sig, 1)))
                elif x == 3 and k == 1:
                    uses.append('(vector-map %s (vector %s))' % (
                        f.name, ' '.join(self.lit_int() for _ in range(self.r.randint(0, 4)))))
                else:
                    uses.append(self.hcall(f.name, sig, 2))
        uses = [self.guard_each(u) for u in uses]
        return self.h_show('(let ((%s %s)) (list %s))' % (f.name, p, ' '.join(uses)))

    def h_table(self):
        """Procedures stored in a global vector, list or dict and called
        later from a function, in tail position, from a hot loop."""
        sig = self.hsig(1)
        m = self.r.randint(2, 5)
        ps = [self.hproc(sig, self.r.randint(0, 2), pure=True)[0] for _ in range(m)]
        tab, disp, x = self.fresh('gtab'), self.fresh('dispatch'), self.fresh('x')
        kind = self.r.randrange(3)
        if kind == 0:
            table = '(define %s (vector %s))' % (tab, ' '.join(ps))
            get = '(vector-ref %s (modulo %s %d))' % (tab, x, m)
        elif kind == 1:
            table = '(define %s (list %s))' % (tab, ' '.join(ps))
            get = '(list-ref %s (modulo %s %d))' % (tab, x, m)
        else:
            table = '(define %s (dict))\n%s' % (tab, '\n'.join(
                '(dict-set! %s %d %s)' % (tab, j, p) for j, p in enumerate(ps)))
            get = '(get %s (modulo %s %d))' % (tab, x, m)
        body = '(%s %s)' % (get, x) if self.chance(0.7) else '(apply %s (list %s))' % (get, x)
        n = self.choice([20, 200, 1100, 2000])
        lp, i, acc = self.fresh('loop'), self.fresh('i'), self.fresh('acc')
        run = '(let %s ((%s 0) (%s 0)) (if (= %s %d) %s (%s (+ %s 1) (modulo (+ %s (%s %s)) 1000003))))' % (
            lp, i, acc, i, n, acc, lp, i, acc, disp, i)
        return '%s\n(define (%s %s) %s)\n%s' % (
            table, disp, x, body, self.h_show('(list %s (map %s (range %d)))' % (run, disp, m + 1)))

    def h_loop_capture(self):
        """Closures made in a loop, each capturing its own iteration's
        variables and some shared ones that later code changes with set!."""
        n = self.r.randint(1, 8)
        i = Var(self.fresh('i'), INT, mutable=False)
        shared = Var(self.fresh('sh'), INT)
        ps = [Var(self.fresh('a'), INT) for _ in range(self.r.randint(0, 2))]
        with self.bound(shared, i, *ps):
            body = self.body(INT, 2, LMAX)
        lam = '(lambda (%s) %s)' % (' '.join(p.name for p in ps), body)
        args = ' '.join(str(self.r.randint(-3, 9)) for _ in ps)
        f = self.fresh('f')
        call = '(%s %s)' % (f, args) if args else '(%s)' % f
        style = self.r.randrange(4)
        if style == 0:
            lp, acc = self.fresh('loop'), self.fresh('acc')
            make = "(let %s ((%s 0) (%s '())) (if (= %s %d) (reverse %s) (%s (+ %s 1) (cons %s %s))))" % (
                lp, i.name, acc, i.name, n, acc, lp, i.name, lam, acc)
        elif style == 1:
            v = self.fresh('v')
            make = ('(let ((%s (make-vector %d 0))) (do ((%s 0 (+ %s 1))) ((= %s %d) (vector->list %s)) '
                    '(vector-set! %s %s %s)))' % (v, n, i.name, i.name, i.name, n, v, v, i.name, lam))
        elif style == 2:
            acc = self.fresh('acc')
            make = "(let ((%s '())) (for-each (lambda (%s) (set! %s (cons %s %s))) (range %d)) (reverse %s))" % (
                acc, i.name, acc, lam, acc, n, acc)
        else:
            make = '(map (lambda (%s) %s) (iota %d))' % (i.name, lam, n)
        fs = self.fresh('fs')
        change = self.choice(['', '(set! %s (+ %s 100))' % (shared.name, shared.name)])
        return self.h_show('(let ((%s %s)) (let ((%s %s)) %s (list (map (lambda (%s) %s) %s) %s)))' % (
            shared.name, self.lit_int(), fs, make, change, f, call, fs, shared.name))

    def h_set_capture(self):
        """Variables shared by several closures, changed with set! inside
        closures, inside closures those return, and outside all of them."""
        ss = [Var(self.fresh('s'), INT) for _ in range(self.r.randint(1, 3))]
        closures, defs = [], []
        with self.bound(*ss):
            for _ in range(self.r.randint(2, 4)):
                name = self.fresh('cl')
                ps = [Var(self.fresh('a'), INT) for _ in range(self.r.randint(0, 2))]
                with self.bound(*ps):
                    sets = ['(set! %s (modulo %s 10007))' % (s.name, self.expr(INT, 2))
                            for s in self.r.sample(ss, self.r.randint(0, len(ss)))]
                    if self.chance(0.3):   # returns a closure that writes later
                        q = Var(self.fresh('b'), INT)
                        with self.bound(q):
                            s = self.choice(ss)
                            inner = '(lambda (%s) (set! %s (modulo %s 10007)) %s)' % (
                                q.name, s.name, self.expr(INT, 2), self.expr(INT, 1))
                        res, kind = inner, 'maker'
                    else:
                        res, kind = self.expr(INT, 2), 'plain'
                defs.append('(%s (lambda (%s) %s))' % (name, ' '.join(p.name for p in ps),
                                                       ' '.join(sets + [res])))
                closures.append((name, len(ps), kind))
            calls = []
            for _ in range(self.r.randint(3, 9)):
                x = self.r.random()
                if x < 0.2:
                    s = self.choice(ss)
                    calls.append('(begin (set! %s %s) %s)' % (s.name, self.leaf(INT), s.name))
                elif x < 0.3:
                    calls.append(self.choice(ss).name)
                else:
                    name, k, kind = self.choice(closures)
                    c = '(%s %s)' % (name, ' '.join(str(self.r.randint(-5, 12)) for _ in range(k)))
                    if kind == 'maker':
                        c = '(%s %d)' % (c, self.r.randint(-5, 12))
                    calls.append(c.replace(' )', ')'))
        binds = ' '.join('(%s %s)' % (s.name, self.lit_int()) for s in ss)
        calls = [self.guard_each(c) for c in calls]
        return self.h_show('(let (%s) (letrec (%s) (list %s)))' % (binds, ' '.join(defs), ' '.join(calls)))

    def guard_each(self, x):
        """x, or x caught on its own (so that one failing call does not
        hide the calls after it)."""
        if self.chance(0.6):
            return "(guard (e (#t (list 'err (error-kind e)))) %s)" % x
        return x

    def h_mutual(self):
        """Mutual recursion through closures (letrec, internal defines or
        closures passed down), in tail position or not."""
        m = self.r.randint(2, 3)
        names = [self.fresh('mr') for _ in range(m)]
        n_ = self.fresh('n')
        tail = self.chance(0.5)
        depth = self.choice([10, 100, 2000]) if not tail else self.choice([100, 2000, 100000])
        bodies = []
        for j in range(m):
            with self.bound(Var(n_, INT, mutable=False)):
                base = self.expr(INT, 1)
                other = self.choice(names)
                if tail:
                    rec = '(%s (- %s 1))' % (other, n_)
                else:
                    rec = '(modulo (+ %s (%s (- %s 1))) 100003)' % (self.expr(INT, 1), other, n_)
            bodies.append('(lambda (%s) (if (<= %s 0) %s %s))' % (n_, n_, base, rec))
        self.spend(depth * 8)
        wrap = self.r.randrange(3)
        if wrap == 0:
            x = '(letrec (%s) (list (%s %d) (%s 3)))' % (
                ' '.join('(%s %s)' % (nm, b) for nm, b in zip(names, bodies)), names[0], depth, names[-1])
        elif wrap == 1:
            w = self.fresh('wrapper')
            defs = ' '.join('(define %s %s)' % (nm, b) for nm, b in zip(names, bodies))
            return '(define (%s k) %s (%s k))\n%s' % (w, defs, names[0], self.h_show('(list (%s %d) (%s 5))' % (
                w, depth, w)))
        else:   # the partner is passed as an argument
            a, b = names[0], names[1] if m > 1 else names[0]
            ka, kb = self.fresh('other'), self.fresh('other')
            with self.bound(Var(n_, INT, mutable=False)):
                ba, bb = self.expr(INT, 1), self.expr(INT, 1)
            if tail:
                ra, rb = '(%s (- %s 1) %s)' % (ka, n_, a), '(%s (- %s 1) %s)' % (kb, n_, b)
            else:
                ra = '(+ 1 (%s (- %s 1) %s))' % (ka, n_, a)
                rb = '(modulo (* 3 (%s (- %s 1) %s)) 100003)' % (kb, n_, b)
            x = ('(letrec ((%s (lambda (%s %s) (if (<= %s 0) %s %s))) (%s (lambda (%s %s) (if (<= %s 0) %s %s)))) '
                 '(list (%s %d %s) (%s 7 %s)))') % (a, n_, ka, n_, ba, ra, b, n_, kb, n_, bb, rb,
                                                   a, depth, b, b, a)
        return self.h_show(x)

    def h_variadic(self):
        """Variadic procedures and optional-looking arguments, called
        directly, through apply and from map/fold-left, with too few
        arguments too (each call guarded on its own)."""
        procs = []
        for _ in range(self.r.randint(1, 3)):
            name, k = self.fresh('vf'), self.r.randint(0, 2)
            ps = [Var(self.fresh('a'), INT) for _ in range(k)]
            rest = Var(self.fresh('r'), ILIST, LMAX)
            shape = self.r.randrange(3)
            with self.bound(*ps, rest):
                if shape == 0 and k >= 1:   # optional second argument with a default
                    opt = Var(self.fresh('o'), INT)
                    with self.bound(opt):
                        b = self.expr(INT, 2)
                    body = '(let ((%s (if (null? %s) %s (car %s)))) %s)' % (
                        opt.name, rest.name, self.lit_int(), rest.name, b)
                else:
                    body = self.expr(self.choice([INT, ILIST]), 2)
            if k == 0:
                lam = '(lambda %s %s)' % (rest.name, body)
            else:
                lam = '(lambda (%s . %s) %s)' % (' '.join(p.name for p in ps), rest.name, body)
            procs.append((name, k, lam))
        calls = []
        for _ in range(self.r.randint(2, 6)):
            name, k, _ = self.choice(procs)
            n = max(0, k + self.r.randint(-1, 3))
            args = [str(self.r.randint(-3, 9)) for _ in range(n)]
            x = self.r.randrange(5)
            if x == 0:
                c = form(name, *args)
            elif x == 1:
                c = '(apply %s (list %s))' % (name, ' '.join(args))
            elif x == 2 and args:
                c = '(apply %s %s (list %s))' % (name, args[0], ' '.join(args[1:]))
            elif x == 3:
                lists = ['(list %s)' % ' '.join(str(self.r.randint(0, 9)) for _ in range(self.r.randint(0, 3)))
                         for _ in range(max(1, k))]
                c = '(map %s %s)' % (name, ' '.join(lists))
            else:
                c = '(%s %s)' % (self.choice(['(lambda (g) (g %s))' % ' '.join(args),
                                              '(lambda (g) (apply g (list %s)))' % ' '.join(args)]), name)
            calls.append("(guard (e (#t (list 'err (error-kind e)))) %s)" % c)
        return self.h_show('(let (%s) (list %s))' % (' '.join('(%s %s)' % (n, l) for n, _, l in procs),
                                                      ' '.join(calls)))

    def h_returning(self):
        """Closures that return closures, applied step by step or all at once."""
        depth = self.r.randint(2, 6)
        vs = [Var(self.fresh('x'), INT, mutable=self.chance(0.3)) for _ in range(depth)]
        with self.bound(*vs):
            inner = self.body(INT, 2, LMAX)
        txt = inner
        for v in reversed(vs):
            txt = '(%s (%s) %s)' % (self.choice(['lambda', 'lambda', 'fn']), v.name, txt)
        f = self.fresh('mk')
        args = [str(self.r.randint(-4, 9)) for _ in vs]
        whole = '(%s %s)' % (f, args[0])
        for a in args[1:]:
            whole = '(%s %s)' % (whole, a)
        partial, cut = '(%s %s)' % (f, args[0]), self.r.randint(1, depth - 1)
        for a in args[1:cut]:
            partial = '(%s %s)' % (partial, a)
        pn = self.fresh('part')
        rest_call = pn
        for a in args[cut:]:
            rest_call = '(%s %s)' % (rest_call, a)
        return self.h_show('(let ((%s %s)) (let ((%s %s)) (list %s %s %s)))' % (
            f, txt, pn, partial, whole, rest_call, rest_call))

    def h_hot(self):
        """A function called thousands of times (over the JIT thresholds),
        taking a closure or a fresh lambda each time."""
        name, g, x = self.fresh('hot'), Var(self.fresh('g'), FN1, cost=20, mutable=False), Var(self.fresh('x'), INT)
        with self.bound(g, x):
            body, _ = self.measure(lambda: self.fit(lambda: self.expr(INT, 2), 200, lambda: '(%s %s)' % (g.name, x.name)))
        if g.name not in body:
            body = '(+ (%s %s) %s)' % (g.name, x.name, body)
        n = self.choice([1001, 1500, 2000, 2500])
        lp, i, acc = self.fresh('loop'), Var(self.fresh('i'), INT, mutable=False), self.fresh('acc')
        with self.bound(i):
            fresh_lam, _ = self.hproc(FN1, 1, pure=True)
        arg = self.choice(['(lambda (y) (+ y %s))' % i.name, fresh_lam,
                           self.choice(['abs', '-', '(lambda (y) (* y 2))'])])
        shape = self.r.randrange(3)
        if shape == 0:
            run = '(let %s ((%s 0) (%s 0)) (if (= %s %d) %s (%s (+ %s 1) (modulo (+ %s (%s %s %s)) 1000003))))' % (
                lp, i.name, acc, i.name, n, acc, lp, i.name, acc, name, arg, i.name)
        elif shape == 1:
            run = '(fold-left (lambda (%s %s) (modulo (+ %s (%s %s %s)) 1000003)) 0 (iota %d))' % (
                acc, i.name, acc, name, arg, i.name, n)
        else:
            run = '(length (filter (lambda (%s) (odd? (%s %s %s))) (range %d)))' % (i.name, name, arg, i.name, n)
        self.spend(n * 60)
        self.fns.append(Fn(name, [FN1, INT], INT, 30))
        return '(define (%s %s %s) %s)\n%s' % (name, g.name, x.name, body, self.h_show(run))

    def h_nested_lambdas(self):
        """Many nested single-use lambdas (a compile-time stress the
        coverage report's compile times watch); bounded at 80."""
        depth = self.choice([10, 40, 80])
        inner = '(+ %s)' % ' '.join('y%d' % i for i in range(0, depth + 1, max(1, depth // 8)))
        for i in range(depth, 0, -1):
            inner = '((lambda (y%d) %s) (+ y%d %d))' % (i, inner, i - 1, i % 5)
        return self.h_show('((lambda (y0) %s) %d)' % (inner, self.r.randint(0, 9)))

    # -- continuation-passing style from random direct-style recursions

    def arith(self, names, d, calls, rec):
        """A failure-free int expression tree over names.  calls: a
        one-element list, the recursive calls still allowed; rec(d) makes
        one such call node.  Nodes: ('lit', n) ('var', x) ('op', op, a, b)
        ('mod', a, k) ('if', test, a, b) ('let', x, a, b) ('app', g, a)
        ('call', f, args) ('appk', a)."""
        x = self.r.random()
        if calls[0] > 0 and x < 0.3:
            calls[0] -= 1
            return rec(d)
        if d <= 0 or x < 0.45:
            if names and self.chance(0.7):
                return ('var', self.choice(names))
            return ('lit', self.r.randint(-3, 12))
        y = self.r.randrange(10)
        if y < 4:
            return ('op', self.choice(['+', '+', '-', '*', 'max', 'min']),
                    self.arith(names, d - 1, calls, rec), self.arith(names, d - 1, calls, rec))
        if y < 5:
            return ('mod', self.arith(names, d - 1, calls, rec), self.choice([7, 97, 1009, -13]))
        if y < 7:
            test = ('op', self.choice(['<', '>', '=', '<=']), self.arith(names, 1, [0], rec),
                    self.arith(names, 1, [0], rec))
            return ('if', test, self.arith(names, d - 1, calls, rec), self.arith(names, d - 1, calls, rec))
        if y < 8:
            v = self.fresh('t')
            a = self.arith(names, d - 1, calls, rec)
            return ('let', v, a, self.arith(names + [v], d - 1, calls, rec))
        if y < 9 and self.cps_g:
            return ('app', self.arith(names, d - 1, calls, rec))
        if self.cps_gk:
            return ('appk', self.arith(names, d - 1, calls, rec))
        return ('lit', self.r.randint(0, 5))

    @staticmethod
    def has_call(e):
        todo = [e]
        while todo:
            e = todo.pop()
            if e[0] in ('call', 'appk'):
                return True
            if e[0] in ('op', 'if'):
                todo += [x for x in e[1:] if isinstance(x, tuple)]
            elif e[0] in ('mod', 'app'):
                todo.append(e[1])
            elif e[0] == 'let':
                todo += [e[2], e[3]]
        return False

    def direct(self, e, f, g, gd):
        """Direct-style text of an arith tree (f: the recursive function)."""
        t = e[0]
        if t == 'lit':
            return str(e[1])
        if t == 'var':
            return e[1]
        if t == 'op':
            a, b = self.direct(e[2], f, g, gd), self.direct(e[3], f, g, gd)
            if e[1] == '*':
                return '(modulo (* %s %s) 10007)' % (a, b)
            return '(%s %s %s)' % (e[1], a, b)
        if t == 'mod':
            return '(modulo %s %d)' % (self.direct(e[1], f, g, gd), e[2])
        if t == 'if':
            return '(if %s %s %s)' % tuple(self.direct(x, f, g, gd) for x in e[1:])
        if t == 'let':
            return '(let ((%s %s)) %s)' % (e[1], self.direct(e[2], f, g, gd), self.direct(e[3], f, g, gd))
        if t == 'app':
            return '(%s %s)' % (g, self.direct(e[1], f, g, gd))
        if t == 'appk':
            return '(%s %s)' % (gd, self.direct(e[1], f, g, gd))
        return '(%s %s%s)' % (f, ' '.join(self.direct(a, f, g, gd) for a in e[2]), self.dextra)

    def kapply(self, k, v):
        """A continuation variable called in tail position, in one of
        several ways."""
        x = self.r.random()
        if x < 0.75:
            return '(%s %s)' % (k, v)
        if x < 0.85:
            return '(apply %s (list %s))' % (k, v)
        if x < 0.93:
            return '((car (list %s)) %s)' % (k, v)
        kk = self.fresh('kk')
        return '(let ((%s %s)) (%s %s))' % (kk, k, kk, v)

    def cps(self, e, k, f, g, gk):
        """CPS text of an arith tree: k is a continuation variable's name
        or a Python function from a value's text to the rest of the code."""
        if not self.has_call(e):
            t = self.direct(e, f, g, None)
            return self.kapply(k, t) if isinstance(k, str) else k(t)
        tag = e[0]
        if tag == 'op':
            def build(vs):
                if e[1] == '*':
                    t = '(modulo (* %s %s) 10007)' % tuple(vs)
                else:
                    t = '(%s %s %s)' % (e[1], vs[0], vs[1])
                return self.kapply(k, t) if isinstance(k, str) else k(t)
            return self.cps_args([e[2], e[3]], build, f, g, gk)
        if tag == 'mod':
            return self.cps(e[1], lambda v: (self.kapply(k, '(modulo %s %d)' % (v, e[2])) if isinstance(k, str)
                                             else k('(modulo %s %d)' % (v, e[2]))), f, g, gk)
        if tag == 'app':
            return self.cps(e[1], lambda v: (self.kapply(k, '(%s %s)' % (g, v)) if isinstance(k, str)
                                             else k('(%s %s)' % (g, v))), f, g, gk)
        if tag == 'call':
            return self.cps_args(e[2], lambda vs: '(%s %s %s)' % (f, ' '.join(vs), self.reify(k)), f, g, gk)
        if tag == 'appk':
            return self.cps(e[1], lambda v: '(%s %s %s)' % (gk, v, self.reify(k)), f, g, gk)
        if tag == 'let':
            return self.cps(e[2], lambda v: '(let ((%s %s)) %s)' % (e[1], v, self.cps(e[3], k, f, g, gk)),
                            f, g, gk)
        # if: the test may contain calls too
        def branch(tv):
            if isinstance(k, str):
                return '(if %s %s %s)' % (tv, self.cps(e[2], k, f, g, gk), self.cps(e[3], k, f, g, gk))
            kn = self.fresh('k')
            return '(let ((%s %s)) (if %s %s %s))' % (kn, self.reify(k), tv, self.cps(e[2], kn, f, g, gk),
                                                      self.cps(e[3], kn, f, g, gk))
        return self.cps(e[1], branch, f, g, gk)

    def cps_args(self, args, build, f, g, gk):
        """Left to right: a value with a call gets a continuation; a
        failure-free one without calls is used as it is."""
        def go(i, acc):
            if i == len(args):
                return build(acc)
            if not self.has_call(args[i]):
                return go(i + 1, acc + [self.direct(args[i], f, g, None)])
            return self.cps(args[i], lambda v: go(i + 1, acc + [v]), f, g, gk)
        return go(0, [])

    def reify(self, k):
        if isinstance(k, str):
            return k
        v = self.fresh('v')
        if self.chance(0.1):
            ign = self.fresh('more')
            return '(lambda (%s . %s) %s)' % (v, ign, k(v))
        return '(lambda (%s) %s)' % (v, k(v))

    @staticmethod
    def call_bound(body, dec_of, nmax, limit):
        """The largest n <= nmax whose call count stays within limit:
        C(n) = 1 + calls of the body at n (the larger branch of each if)."""
        memo = {}

        def count(e, n):
            t = e[0]
            if t == 'call':
                return C(n - dec_of[id(e)]) + sum(count(a, n) for a in e[2][1:])
            if t == 'if':
                return count(e[1], n) + max(count(e[2], n), count(e[3], n))
            if t in ('op',):
                return count(e[2], n) + count(e[3], n)
            if t in ('mod', 'app', 'appk'):
                return count(e[1], n)
            if t == 'let':
                return count(e[2], n) + count(e[3], n)
            return 0

        def C(n):
            if n <= 0:
                return 1
            if n not in memo:
                memo[n] = 1 + count(body, n)
            return memo[n]
        best = 0
        for n in range(0, nmax + 1):
            if C(n) > limit:
                break
            best = n
        return best

    def h_cps(self):
        """A random recursion over n written twice: in direct style and in
        continuation-passing style, where every non-tail call gets a fresh
        lambda as its continuation.  The CPS function is an internal define
        (the cpstak shape), a letrec or a top-level define; the closures it
        uses are passed as arguments or captured."""
        if self.chance(0.2):
            return self.h_cpstak()
        f, fd = self.fresh('fk'), self.fresh('fd')
        n_ = self.fresh('n')
        extra = [self.fresh('p') for _ in range(self.r.randint(0, 2))]
        self.cps_g = self.chance(0.5) and self.fresh('g')
        self.cps_gk = self.chance(0.4) and self.fresh('gk')
        gd = self.cps_gk and self.fresh('gd')
        names = [n_] + extra
        decs = {}

        def rec(d):
            dec = self.choice([1, 1, 1, 2])
            args = [('op', '-', ('var', n_), ('lit', dec))]
            for _ in extra:
                a = self.arith(names, max(d - 1, 0), [0] if self.chance(0.7) else calls, rec)
                args.append(a if a[0] in ('lit', 'var') else ('mod', a, 1009))
            node = ('call', f, args)
            decs[id(node)] = dec
            return node
        calls = [self.choice([1, 1, 1, 2, 2, 3])]
        body = self.arith(names, self.r.randint(1, 4), calls, rec)
        if not self.has_call(body) or not any(True for _ in decs):
            calls[0] = 1
            body = ('op', '+', body, rec(1))
        if self.chance(0.7):
            body = ('mod', body, 1000003)
        base = self.arith(names, 2, [0], rec)
        limit = self.choice([300, 2000, 5000, 20000, 60000])
        nmax = self.call_bound(body, decs, 3000, limit)
        n0 = nmax if self.chance(0.6) else self.r.randint(0, max(nmax, 0))
        self.spend(limit * 40)
        g, gk = self.cps_g, self.cps_gk
        self.cps_g = self.cps_gk = False
        test = self.choice(['(<= %s 0)', '(< %s 1)', '(not (> %s 0))']) % n_
        cbody = self.cps(body, 'k', f, g, gk)
        cbase = self.cps(base, 'k', f, g, gk)
        self.dextra = ''.join(' ' + x for x in (g, gd) if x)   # closures passed down
        dbody = self.direct(body, fd, g, gd)
        dbase = self.direct(base, fd, g, gd)
        self.dextra = ''
        ps = ' '.join([n_] + extra)
        # the closures: pure and failure-free; gd is gk in direct style
        gx = self.fresh('x')
        g1 = self.direct(self.arith([gx], 2, [0], rec), None, None, None)
        g2 = self.direct(self.arith([gx], 2, [0], rec), None, None, None)
        closures = []            # (name in the CPS code, value, direct name, direct value)
        if g:
            closures.append((g, '(lambda (%s) %s)' % (gx, g1), g, '(lambda (%s) %s)' % (gx, g1)))
        if gk:
            closures.append((gk, '(lambda (%s k) %s)' % (gx, self.kapply('k', g2)), gd, '(lambda (%s) %s)' % (gx, g2)))
        k0 = self.choice(['(lambda (r) r)', "(lambda (r) (list 'done r))", '(lambda (r . more) (* r 2))'])
        dpar = ''.join(' ' + c[2] for c in closures)
        dfun = '(define (%s %s%s) (if %s %s %s))' % (fd, ps, dpar, test, dbase, dbody)
        args0 = [str(n0)] + [str(self.r.randint(-3, 9)) for _ in extra]
        wrapper = self.fresh('cps')
        wpar = ' '.join(['m'] + [self.fresh('q') for _ in extra])
        where = self.r.randrange(3)
        cfun = '(lambda (%s k) (if %s %s %s))' % (ps, test, cbase, cbody)
        if where == 2:
            # top level: the closures are globals the CPS function uses
            defs = ''.join('(define %s %s)\n' % (c[0], c[1]) for c in closures)
            defs += '(define (%s %s k) (if %s %s %s))\n(define (%s %s) (%s %s %s))' % (
                f, ps, test, cbase, cbody, wrapper, wpar, f, wpar, k0)
            cargs = ''
        else:
            # inside the wrapper the CPS function captures the closures,
            # the wrapper's parameters
            cpar = ''.join(' ' + c[0] for c in closures)
            cargs = ''.join(' ' + c[1] for c in closures)
            if where == 0:
                inner = '(define (%s %s k) (if %s %s %s)) (%s %s %s)' % (
                    f, ps, test, cbase, cbody, f, wpar, k0)
            else:
                inner = '(letrec ((%s %s)) (%s %s %s))' % (f, cfun, f, wpar, k0)
            defs = '(define (%s %s%s) %s)' % (wrapper, wpar, cpar, inner)
        ccall = '(%s %s%s)' % (wrapper, ' '.join(args0), cargs)
        dcall = '(%s %s%s)' % (fd, ' '.join(args0), ''.join(' ' + c[3] for c in closures))
        out = [dfun, defs]
        if self.chance(0.25):
            out.append(self.warm('(%s (modulo i 3) %s%s)' % (wrapper, ' '.join(args0[1:]), cargs)))
        out.append(self.h_show('(list %s %s)' % (dcall, ccall)))
        return '\n'.join(out)

    def h_cpstak(self):
        """The classic cpstak: an internal define whose continuations are
        fresh lambdas nested three deep, with arguments that keep the call
        count bounded."""
        # enough calls, most of the time, for the collector to run while
        # continuations are live (tens of thousands)
        big = self.chance(0.6)
        best = None
        for _ in range(40 if big else 1000):
            x, y, z = self.r.randint(4, 18), self.r.randint(0, 12), self.r.randint(0, 8)
            calls = self.tak_calls(x, y, z, 100000)
            if calls is not None and (best is None or calls > best[0]):
                best = (calls, x, y, z)
                if not big:
                    break
        calls, x, y, z = best
        self.spend(calls * 30)
        name = self.fresh('cpstak')
        return ('(define (%s x y z)\n'
                '  (define (tak x y z k)\n'
                '    (if (not (< y x))\n'
                '        (k z)\n'
                '        (tak (- x 1) y z\n'
                '             (lambda (v1)\n'
                '               (tak (- y 1) z x\n'
                '                    (lambda (v2)\n'
                '                      (tak (- z 1) x y\n'
                '                           (lambda (v3) (tak v1 v2 v3 k)))))))))\n'
                '  (tak x y z (lambda (a) a)))\n%s') % (name, self.h_show('(%s %d %d %d)' % (name, x, y, z)))

    @staticmethod
    def tak_calls(x, y, z, cap):
        """How many calls tak makes, or None past cap."""
        n = [0]
        stack = []   # iterative evaluation would be long; recursion is shallow for these sizes

        def tak(x, y, z):
            n[0] += 1
            if n[0] > cap:
                raise OverflowError
            if not y < x:
                return z
            return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
        del stack
        try:
            tak(x, y, z)
        except (OverflowError, RecursionError):
            return None
        return n[0]

    def h_deep_cps(self):
        """A CPS chain 10^4 or 10^5 continuations deep: every step is a
        tail call, so it must run in constant stack."""
        n = self.choice([10000, 100000])
        self.spend(n * 8)
        f, k, v, m = self.fresh('chain'), self.fresh('k'), self.fresh('v'), self.fresh('n')
        step = self.choice(['(modulo (+ %s %s) 1000003)', '(modulo (- (* 3 %s) %s) 1000003)',
                            '(max %s (modulo %s 977))'])
        x = self.r.randrange(5)
        call_k = self.kapply(k, step % (v, m))
        if x == 0:
            defs = '(define (%s %s %s) (if (= %s 0) (%s 0) (%s (- %s 1) (lambda (%s) %s))))' % (
                f, m, k, m, k, f, m, v, call_k)
            run = '(%s %d (lambda (r) r))' % (f, n)
        elif x == 1:   # over a list, the continuation closes over the element
            l = self.fresh('l')
            defs = ('(define (%s %s %s) (if (null? %s) (%s 0) (%s (cdr %s) (lambda (%s) %s))))' % (
                f, l, k, l, k, f, l, v, self.kapply(k, step % (v, '(car %s)' % l))))
            run = '(%s (iota %d) (lambda (r) (list r)))' % (f, n)
        elif x == 2:   # two functions alternating, in a letrec inside a function
            g = self.fresh('alt')
            defs = ('(define (%s top)\n  (letrec ((a (lambda (%s %s) (if (= %s 0) (%s 1) (b (- %s 1) (lambda (%s) %s)))))\n'
                    '           (b (lambda (%s %s) (if (= %s 0) (%s 2) (a (- %s 1) (lambda (%s) %s))))))\n'
                    '    (a top (lambda (r) r))))') % (
                        f, m, k, m, k, m, v, call_k, m, k, m, k, m, v, self.kapply(k, step % (v, '1')))
            del g
            run = '(%s %d)' % (f, n)
        elif x == 3:   # continuations stored in a vector and fetched back
            defs = ('(define (%s %s %s) (if (= %s 0) ((vector-ref (vector %s) 0) 0) '
                    '(%s (- %s 1) (vector-ref (vector (lambda (%s) %s)) 0))))') % (
                        f, m, k, m, k, f, m, v, call_k)
            run = '(%s %d (lambda (r) r))' % (f, n)
        else:          # an accumulator threaded through the continuations, loop by named let
            defs = ('(define (%s top) (let loop ((%s top) (%s (lambda (%s) %s))) (if (= %s 0) (%s 0) '
                    '(loop (- %s 1) (lambda (%s) (%s %s))))))') % (
                        f, m, k, v, v, m, k, m, v, k, step % (v, m))
            run = '(%s %d)' % (f, n)
        return '%s\n%s' % (defs, self.h_show(run))

    # ------------------------------------------------------- redefined globals
    #
    # Native code of a function that calls only itself (by its global name)
    # and inline built-ins assumes the globals it takes its callees from
    # (jit/README.md, "Assumed globals"); every write of such a global must
    # drop that code before the writer goes on.  The r_* pieces make such
    # functions hot and then write those globals: the function's own name
    # (define, set! to a lambda, to a wrapper of the old closure, from a hot
    # function whose native code does the set!), a built-in it runs inline
    # (set! or define of + < car cons = ... to a lambda, then restored), with
    # the old closure still held and called, and before the first call.
    #
    # Termination does not depend on what the redefinitions do: a built-in
    # that bounds a recursion (the test and the decrement of its counter, or
    # anything whose result flows into the arguments of a nested self call)
    # is only ever replaced by a lambda of the same meaning; the others may
    # get one that computes something else (a + b + 1, <=, car + 1, ...).
    # Replacements and the loops around the calls use the built-ins kept in
    # keep-* globals (REDEF_PRELUDE), and every window in which a built-in is
    # replaced restores it, in its guard's handler too, so the rest of the
    # program sees the built-ins again.

    REDEF_PRELUDE = [
        '(define keep-plus +)', '(define keep-minus -)', '(define keep-lt <)',
        '(define keep-le <=)', '(define keep-gt >)', '(define keep-ge >=)',
        '(define keep-eq =)', '(define keep-car car)', '(define keep-cdr cdr)',
        '(define keep-cons cons)', '(define keep-null null?)', '(define keep-zero zero?)',
        '(define keep-not not)',
        "(define (rview r f) (if (procedure? r) (list 'proc (eq? r f)) r))",
        '(define (rint r) (cond ((procedure? r) 7) ((keep-null r) 0) ((pair? r) (length r)) (else r)))',
    ]
    # built-in -> (its keep-* global, replacements (text, same meaning?)):
    # lambdas, and other built-ins (a built-in that is not the one assumed)
    REDEF_BUILTINS = {
        '+': ('keep-plus', [('(lambda (a b) (keep-plus a b))', True),
                            ('(lambda args (apply keep-plus args))', True),
                            ('(lambda (a b) (keep-plus a (keep-plus b 1)))', False),
                            ('(lambda (a . more) (apply keep-plus 1 a more))', False),
                            ('max', False)]),
        '-': ('keep-minus', [('(lambda (a b) (keep-minus a b))', True),
                             ('(lambda (a b) (keep-plus a (keep-minus 0 b)))', True)]),
        '<': ('keep-lt', [('(lambda (a b) (keep-lt a b))', True),
                          ('(lambda (a b) (keep-gt b a))', True),
                          ('(lambda (a b) (keep-le a b))', False), ('<=', False)]),
        '<=': ('keep-le', [('(lambda (a b) (keep-not (keep-gt a b)))', True)]),
        '>': ('keep-gt', [('(lambda (a b) (keep-lt b a))', True),
                          ('(lambda (a b) (keep-ge a b))', False)]),
        '>=': ('keep-ge', [('(lambda (a b) (keep-le b a))', True)]),
        '=': ('keep-eq', [('(lambda (a b) (keep-eq a b))', True),
                          ('(lambda (a b) (eq? a b))', True), ('eq?', True), ('eqv?', True)]),
        'car': ('keep-car', [('(lambda (p) (keep-car p))', True),
                             ('(lambda (p) (keep-plus 1 (keep-car p)))', False)]),
        'cdr': ('keep-cdr', [('(lambda (p) (keep-cdr p))', True)]),
        'cons': ('keep-cons', [('(lambda (a d) (keep-cons a d))', True),
                               ('(lambda (a d) (keep-cons (keep-plus a 1) d))', False), ('list', False)]),
        'null?': ('keep-null', [('(lambda (x) (keep-null x))', True), ('empty?', True)]),
        'zero?': ('keep-zero', [('(lambda (x) (keep-zero x))', True),
                                ('(lambda (x) (keep-eq x 0))', True)]),
        'not': ('keep-not', [('(lambda (x) (if x #f #t))', True)]),
    }
    R_CALL = 8         # cost of one call of an r_* function

    class RFn:
        """A closed recursive function of an r_* piece.  body(F, v) is its
        source (v < nvar: variants that compute other values the same way);
        plain(F) a body without calls; calls(*args) how many calls a call
        with those (Python) arguments makes; small() arguments for a printed
        call; hot(i) the texts of arguments made from a loop index i and
        hot_py(i) their values; uses: the built-ins it runs; critical: those
        that bound its recursion (only ever replaced by the same meaning);
        feeds: its results are arguments of its calls (a wrapper must not
        change them); ret: int, list or proc."""

        def __init__(self, params, body, nvar, plain, calls, small, hot, hot_py, uses,
                     critical, ret='int', feeds=False):
            self.params, self.body, self.nvar, self.plain = params, body, nvar, plain
            self.calls, self.small, self.hot, self.hot_py = calls, small, hot, hot_py
            self.uses, self.critical, self.ret = set(uses), set(critical), ret
            self.feeds = feeds

    @staticmethod
    def count_calls(step):
        """The number of calls a call of the recursive function whose body
        is step(rec, *args) makes (rec: the recursive call), as a function
        of the arguments."""
        def calls(*args):
            n = [0]

            def rec(*a):
                n[0] += 1
                return step(rec, *a)
            rec(*args)
            return n[0]
        return calls

    @staticmethod
    def r_text(x):
        if isinstance(x, list):
            return '(list %s)' % ' '.join(map(str, x)) if x else "'()"
        return str(x)

    def r_template(self):
        r = self.r
        cc = self.count_calls

        def fib_step(rec, n):
            return n if n < 2 else rec(n - 1) + rec(n - 2)

        def tak_step(rec, x, y, z):
            return z if not y < x else rec(rec(x - 1, y, z), rec(y - 1, z, x), rec(z - 1, x, y))

        def ack_step(rec, m, n):
            if m == 0:
                return n + 1
            return rec(m - 1, 1) if n == 0 else rec(m - 1, rec(m, n - 1))

        def m91_step(rec, n):
            return n - 10 if n > 100 else rec(rec(n + 11))

        def length1(xs, *_):
            return len(xs) + 1

        def ints(k):
            return [r.randint(0, 9) for _ in range(k)]

        def fib():
            op = self.choice(['+', '+', '-'])
            bases = ['n', '1', '(+ n 1)', '0']
            ctl = self.chance(0.15)   # a call of abs: not closed
            right = '(abs (F (- n 2)))' if ctl else '(F (- n 2))'
            return self.RFn(
                ['n'], lambda f, v: ('(if (< n 2) %s (%s (F (- n 1)) %s))' % (bases[v], op, right)).replace('F', f),
                len(bases), lambda f: '(+ n %d)' % r.randint(1, 9), cc(fib_step),
                lambda: [r.randint(0, 10)], lambda i: ['(modulo %s 5)' % i], lambda i: [i % 5],
                ['<', '-', op], ['-'])

        def tail():
            fins, step = ['acc', '(+ acc 1)'], self.choice(['n', '(+ n n)', '(quotient n 2)', '1'])
            return self.RFn(
                ['n', 'acc'], lambda f, v: '(if (<= n 0) %s (%s (- n 1) (remainder (+ acc %s) 1009)))' % (
                    fins[v], f, step),
                2, lambda f: '(- acc n)', lambda n, a: max(n, 0) + 1,
                lambda: [r.randint(0, 40), r.randint(0, 9)],
                lambda i: ['(modulo %s 7)' % i, '(modulo %s 5)' % i], lambda i: [i % 7, i % 5],
                ['<=', '-', '+'], ['<=', '-'])

        def count_up():
            step = self.choice(['i', '(remainder i 3)', '(- n i)'])
            return self.RFn(
                ['i', 'n', 'acc'], lambda f, v: '(if (>= i n) %s (%s (+ i 1) n (+ acc %s)))' % (
                    ['acc', '(- acc)'][v], f, step),
                2, lambda f: '(+ i (- n acc))', lambda i, n, a: max(n - i, 0) + 1,
                lambda: [r.randint(0, 5), r.randint(0, 30), r.randint(0, 9)],
                lambda i: ['(modulo %s 3)' % i, '(modulo %s 9)' % i, '1'], lambda i: [i % 3, i % 9, 1],
                ['>=', '+', '-'], ['>=', '+'])

        def tak():
            forms = ['(if (not (< y x)) z (F (F (- x 1) y z) (F (- y 1) z x) (F (- z 1) x y)))',
                     '(if (< y x) (F (F (- x 1) y z) (F (- y 1) z x) (F (- z 1) x y)) z)']
            calls = cc(tak_step)

            def small():
                while True:
                    a = [r.randint(0, 8) for _ in range(3)]
                    if calls(*a) <= 400:
                        return a
            return self.RFn(
                ['x', 'y', 'z'], lambda f, v: forms[v].replace('F', f), 2, lambda f: '(if (< y x) y z)',
                calls, small, lambda i: ['(modulo %s 4)' % i, '(modulo %s 3)' % i, '(modulo %s 2)' % i],
                lambda i: [i % 4, i % 3, i % 2], ['<', 'not', '-'], ['<', 'not', '-'], feeds=True)

        def ack():
            return self.RFn(
                ['m', 'n'], lambda f, v: ('(cond ((= m 0) (+ n 1)) ((= n 0) (F (- m 1) 1)) '
                                          '(else (F (- m 1) (F m (- n 1)))))').replace('F', f),
                1, lambda f: '(+ m n 1)', cc(ack_step), lambda: [r.randint(0, 2), r.randint(0, 5)],
                lambda i: ['(modulo %s 3)' % i, '(modulo %s 2)' % i], lambda i: [i % 3, i % 2],
                ['=', '+', '-'], ['=', '+', '-'], feeds=True)

        def m91():
            return self.RFn(
                ['n'], lambda f, v: '(if (> n 100) (- n 10) (F (F (+ n 11))))'.replace('F', f),
                1, lambda f: '(- n 10)', cc(m91_step), lambda: [r.randint(85, 110)],
                lambda i: ['(+ 98 (modulo %s 5))' % i], lambda i: [98 + i % 5],
                ['>', '-', '+'], ['>', '-', '+'], feeds=True)

        def sum_list():
            op = self.choice(['+', '+', '-'])
            return self.RFn(
                ['xs'], lambda f, v: '(if (null? xs) %d (%s (car xs) (%s (cdr xs))))' % (v, op, f),
                2, lambda f: '(length xs)', length1, lambda: [ints(r.randint(0, 8))],
                lambda i: ['(iota (modulo %s 7))' % i], lambda i: [list(range(i % 7))],
                ['null?', 'car', 'cdr', op], ['null?', 'cdr'])

        def build():
            elems = ['n', '(modulo n 5)', '(+ n n)', '(remainder n 3)']
            return self.RFn(
                ['n'], lambda f, v: "(if (<= n 0) '() (cons %s (%s (- n 1))))" % (elems[v], f),
                len(elems), lambda f: '(list n)', lambda n: max(n, 0) + 1, lambda: [r.randint(0, 10)],
                lambda i: ['(modulo %s 8)' % i], lambda i: [i % 8],
                ['<=', '-', 'cons', '+'], ['<=', '-'], ret='list')

        def nested_acc():
            return self.RFn(
                ['n', 'acc'], lambda f, v: '(if (<= n 0) (+ acc %d) (%s (- n 1) (%s (- n 1) acc)))' % (v + 1, f, f),
                2, lambda f: '(+ n acc)', lambda n, a: 2 ** (max(n, 0) + 1) - 1,
                lambda: [r.randint(0, 7), r.randint(0, 9)],
                lambda i: ['(modulo %s 3)' % i, '(modulo %s 4)' % i], lambda i: [i % 3, i % 4],
                ['<=', '-', '+'], ['<=', '-'])

        def nested_zero():
            forms = ['(if (<= n 0) 0 (F (F (- n 1))))', '(if (< n 1) 0 (F (F (- n 1))))']
            return self.RFn(
                ['n'], lambda f, v: forms[v].replace('F', f), 2, lambda f: '(- n)',
                lambda n: 2 * max(n, 0) + 1, lambda: [r.randint(0, 30)],
                lambda i: ['(modulo %s 5)' % i], lambda i: [i % 5],
                ['<=', '<', '-'], ['<=', '<', '-'], feeds=True)

        def callee():
            # its callee comes from either of two globals: not closed, a control
            xs = ['(- n 1)', '0', 'n']
            return self.RFn(
                ['n'], lambda f, v: ('(if (<= n 0) 0 (+ ((if (zero? (remainder n 2)) car cdr) (cons n %s)) '
                                     '(%s (- n 1))))' % (xs[v], f)),
                len(xs), lambda f: '(car (cons n n))', lambda n: max(n, 0) + 1, lambda: [r.randint(0, 20)],
                lambda i: ['(modulo %s 7)' % i], lambda i: [i % 7],
                ['<=', '-', '+', 'zero?', 'car', 'cdr', 'cons'], ['<=', '-'])

        def scan():
            cmp, k = self.choice(['<', '>', '=', '<=']), r.randint(0, 9)
            return self.RFn(
                ['xs', 'acc'], lambda f, v: '(if (null? xs) acc (%s (cdr xs) (if (%s (car xs) %d) (+ acc %d) acc)))' % (
                    f, cmp, k, v + 1),
                2, lambda f: 'acc', length1, lambda: [ints(r.randint(0, 8)), r.randint(0, 5)],
                lambda i: ['(iota (modulo %s 7))' % i, '(modulo %s 3)' % i], lambda i: [list(range(i % 7)), i % 3],
                ['null?', 'cdr', 'car', cmp, '+'], ['null?', 'cdr'])

        def itself():
            return self.RFn(
                ['n'], lambda f, v: '(if (<= n 0) %s (%s (- n %d)))' % (f, f, v + 1),
                2, lambda f: '(+ n 100)', lambda n: max(n, 0) + 1, lambda: [r.randint(0, 10)],
                lambda i: ['(modulo %s 6)' % i], lambda i: [i % 6],
                ['<=', '-'], ['<=', '-'], ret='proc')

        return self.pick([(3, fib), (2, tail), (1, count_up), (2, tak), (1, ack), (1, m91),
                          (2, sum_list), (2, build), (2, nested_acc), (1, nested_zero),
                          (2, callee), (1, scan), (2, itself)])

    def r_calls(self, t, f, mult, k=None):
        """A list of k calls of f with small arguments."""
        parts = []
        for _ in range(k or self.r.randint(1, 3)):
            args = t.small()
            self.spend(t.calls(*args) * mult * self.R_CALL)
            parts.append('(rview (%s %s) %s)' % (f, ' '.join(map(self.r_text, args)), f))
        return '(list %s)' % ' '.join(parts)

    def r_loop(self, t, f, mult, n=None, pre=''):
        """A loop calling f n times, pre (an expression of i) first in each
        iteration, its value the sum of the results.  Without n, as many
        times as make 1000 to 2500 calls of f (over every JIT threshold)."""
        calls = sum(t.calls(*t.hot_py(i)) for i in range(60)) / 60.0
        n = n or int(self.choice([1001, 1200, 1500, 2000, 2500]) / calls) + 1
        self.spend(int(n * (6 + calls * mult * self.R_CALL)))
        return ('(fold-left (lambda (acc i) %s(modulo (keep-plus acc (rint (%s %s))) 1000003)) 0 (iota %d))'
                % (pre + ' ' if pre else '', f, ' '.join(t.hot('i')), n))

    def r_wait(self, call):
        """Call on (an effect-free call, or one whose effect writes what is
        already there) until more native calls are counted than before (at
        most 300 ms or 200,000 times; 60 ms where nothing was ever compiled:
        cek and vm): at thresholds above 0 the function is compiled on the
        background thread, and the writes that follow should find its
        native code installed.  Nothing printed depends on how long it ran."""
        self.spend(5000)
        return ('(let ((t0 (current-time-ms)) (n0 (get (jit-stats) :native-calls 0))) '
                '(let wait ((i 0)) (let ((ms (- (current-time-ms) t0))) '
                '(when (and (< i 200000) (< ms 300) (or (< ms 60) (> (get (jit-stats) :compiled 0) 0)) '
                '(= (get (jit-stats) :native-calls 0) n0)) %s (wait (+ i 1))))))' % call)

    def r_show(self, x):
        return '(show %s %s)' % (self.label(), self.catch_all(x))

    def r_builtin(self, ts):
        """(built-in, its keep-* global, a replacement): mostly one that
        one of the RFns ts runs inline."""
        uses = set().union(*(t.uses for t in ts))
        names = sorted(uses & set(self.REDEF_BUILTINS)) if self.chance(0.85) else sorted(self.REDEF_BUILTINS)
        b = self.choice(names or ['+'])
        keep, repls = self.REDEF_BUILTINS[b]
        if any(b in t.critical or (t.feeds and b in t.uses) for t in ts):
            repls = [x for x in repls if x[1]]
        return b, keep, self.choice(repls)[0]

    def r_new_fn(self, t, f, old):
        """(text of a new value for the global f, taking the same arguments;
        the factor by which it may multiply the calls a call makes): a
        variant, a lambda without calls, a wrapper of the closure in old
        (counting its calls in a global, or changing its result where that
        bounds no recursion), or a variadic lambda."""
        ps = ' '.join(t.params)
        x = self.r.random()
        if x < 0.3:
            return '(lambda (%s) %s)' % (ps, t.body(f, self.r.randrange(t.nvar))), 1
        if x < 0.45:
            return '(lambda (%s) %s)' % (ps, t.plain(f)), 1
        if x < 0.85:
            if t.ret == 'int' and not t.feeds and self.chance(0.5):
                return '(let ((old %s)) (lambda (%s) (keep-plus 1 (old %s))))' % (old, ps, ps), 2
            cnt = self.fresh('cnt')
            self.r_counters.append(cnt)
            return ('(let ((old %s)) (lambda (%s) (set! %s (keep-plus %s 1)) (old %s)))'
                    % (old, ps, cnt, cnt, ps)), 2
        return '(lambda args (keep-plus %d (length args)))' % self.r.randint(0, 99), 1

    def r_redef(self):
        """A closed recursive function made hot, then the globals its native
        code may assume written, each write followed by more calls."""
        self.redef_used = True
        self.r_counters = []
        t = self.r_template()
        f = self.fresh('rf')
        ps = ' '.join(t.params)
        mult = 1           # bound on how many times more calls a call makes now
        out = ['(define (%s %s) %s)' % (f, ps, t.body(f, 0))]
        held = []          # a global holding an earlier closure of f
        ts = [t]
        other = None       # a second closed function g, assuming built-ins too
        if self.chance(0.35):
            t2, g = self.r_template(), self.fresh('rf')
            ts.append(t2)
            other = (t2, g)
            out.append('(define (%s %s) %s)' % (g, ' '.join(t2.params), t2.body(g, 0)))
            out.append(self.r_show(self.r_loop(t2, g, 1)))

        def calls(m):
            c = self.r_calls(t, f, m)
            if other:
                c = '(list %s %s)' % (c, self.r_calls(other[0], other[1], 2, 1))
            return c

        def hold():
            if not held:
                held.append(self.fresh('old'))
                out.append('(define %s %s)' % (held[0], f))
            return held[0]

        def window(set_to, first_loop=False, which=None):
            """Replace a built-in, call f, restore it (also on an error)."""
            b, keep, repl = which or self.r_builtin(ts)
            body = [set_to(b, repl), self.r_show(calls(2 * mult))]
            if first_loop or self.chance(0.25):
                body.append(self.r_show(self.r_loop(t, f, 2 * mult)))
            body += [set_to(b, keep), self.r_show(calls(mult))]
            return "(guard (e (#t %s (show %s (list 'caught (error-kind e))))) %s)" % (
                set_to(b, keep), self.label(), ' '.join(body))

        def plain_set(b, v):
            return '(set! %s %s)' % (b, v)

        # a write between the definition and the first call
        if self.chance(0.25):
            first = self.choice(['define', 'set', 'builtin'])
            if first == 'define':
                out.append('(define (%s %s) %s)' % (f, ps, t.body(f, self.r.randrange(t.nvar))))
            elif first == 'set':
                v, mult = self.r_new_fn(t, f, hold())
                out.append('(set! %s %s)' % (f, v))
            else:
                out.append(window(plain_set, first_loop=True))
        out.append(self.r_show(self.r_loop(t, f, mult)))
        if not self.r_counters and self.chance(0.3):
            out.append(self.r_wait('(%s %s)' % (f, ' '.join(map(self.r_text, t.small())))))
        out.append(self.r_show(calls(mult)))
        start = self.cost

        for _ in range(self.r.randint(1, 3)):
            if self.cost - start > 60000:
                break
            if self.chance(0.4):
                hold()
            kind = self.pick([(3, lambda: 'define'), (2, lambda: 'set'), (4, lambda: 'builtin'),
                              (1, lambda: 'define-builtin'), (3, lambda: 'setter'),
                              (1, lambda: 'toggle'), (1 if other else 0, lambda: 'define-other')])
            if kind == 'define-other':
                t2, g = other
                out.append('(define (%s %s) %s)' % (g, ' '.join(t2.params), t2.body(g, self.r.randrange(t2.nvar))))
            elif kind == 'define':
                out.append('(define (%s %s) %s)' % (f, ps, t.body(f, self.r.randrange(t.nvar))))
                mult = 1
            elif kind == 'set':
                v, m = self.r_new_fn(t, f, f)
                out.append('(set! %s %s)' % (f, v))
                mult *= m
            elif kind == 'builtin':
                out.append(window(plain_set))
            elif kind == 'define-builtin':
                b, keep, repl = self.r_builtin(ts)
                out += ['(define %s %s)' % (b, repl), self.r_show(calls(2 * mult)),
                        '(define %s %s)' % (b, keep)]
            else:
                # the write done by a hot function (native code's set!),
                # which first writes, many times, the value the global holds
                s = self.fresh('setter')
                if self.chance(0.5):
                    which = self.r_builtin(ts)
                    b, keep, repl = which
                    cur = keep
                else:
                    b, keep, cur = f, hold(), f
                    repl, m = self.r_new_fn(t, f, keep)
                after = ''
                if self.chance(0.5):   # and calls f at once, in the same native code
                    args = t.hot_py(self.r.randint(0, 3))
                    self.spend(2500 * t.calls(*args) * self.R_CALL)
                    after = ' (rint (%s %s))' % (f, ' '.join(map(self.r_text, args)))
                out.append('(define (%s v) (set! %s v)%s)' % (s, b, after))
                out.append(self.r_show(self.r_loop(t, f, mult, n=self.choice([1001, 1200]),
                                                   pre='(%s %s)' % (s, cur))))
                if not self.r_counters and self.chance(0.3):
                    out.append(self.r_wait('(%s %s) (%s %s)' % (s, cur, f, ' '.join(map(self.r_text, t.small())))))

                def call_set(_, v):
                    return '(%s %s)' % (s, v)
                if kind == 'setter' and b == f:
                    out.append('(%s %s)' % (s, repl))
                    mult *= m
                elif kind == 'setter':
                    out.append(window(call_set, which=which))
                else:
                    # one value or the other at each iteration, then the kept one
                    pre = '(%s (if (keep-eq (modulo i 2) 0) %s %s))' % (s, repl, keep)
                    loop = self.r_loop(t, f, 2 * mult, n=self.choice([1001, 1200]), pre=pre)
                    out.append("(guard (e (#t (%s %s) (show %s (list 'caught (error-kind e))))) "
                               "(show %s %s) (%s %s))" % (s, keep, self.label(), self.label(),
                                                          self.catch_all(loop), s, keep))
                    if b == f:
                        mult *= 2
            shown = calls(mult)
            if held and self.chance(0.7):
                shown = '(list %s %s)' % (shown, self.r_calls(t, held[0], 2 * mult, 1))
            if self.r_counters:
                shown = '(list %s %s)' % (shown, ' '.join(self.r_counters))
            out.append(self.r_show(shown))
            if self.chance(0.35) and self.cost - start < 40000:
                out.append(self.r_show(self.r_loop(t, f, mult)))
        return '\n'.join(['(define %s 0)' % c for c in self.r_counters] + out)

    def warm(self, call):
        """Call a failure-free, effect-free function until the JIT has
        native code to run (at most 800 ms or 10^6 calls), so that at the
        default threshold the rest of the program runs code that was
        compiled while it ran.  Nothing printed depends on how long it ran.
        `call` may use i."""
        return ('(let ((t0 (current-time-ms))) (let warm ((i 0)) (when (and (< i 1000000) '
                '(< (- (current-time-ms) t0) 800) (= (get (jit-stats) :native-calls 0) 0)) %s (warm (+ i 1)))))'
                % call)

    def h_top_function(self):
        """A top-level function taking procedures (and maybe returning
        one); registered so that later expressions call it."""
        name = self.fresh('hof')
        params = []
        for _ in range(self.r.randint(1, 3)):
            ty = self.choice([FN1, FN1, FN2, PRED, INT, INT, ILIST])
            params.append(Var(self.fresh('p'), ty, 6, mutable=ty in SETTABLE, cost=20))
        if self.chance(0.3):
            ret = FN1
            with self.bound(*params):
                body, cost = self.define_fn(lambda: self.hproc(FN1, 2)[0], lambda: 'abs')
            cost = 3
        else:
            ret = self.choice([INT, INT, ILIST])
            with self.bound(*params):
                body, cost = self.define_fn(lambda: self.body(ret, 3, 6), lambda: self.literal(ret, 6))
        self.fns.append(Fn(name, [p.ty for p in params], ret, cost + 20 * len(params), size=6))
        return '(define (%s %s) %s)' % (name, ' '.join(p.name for p in params), body)

    def h_form(self, focus=None):
        """One test form of the higher-order shape (one of the kinds in
        focus, a list of indexes into h_kinds(), if given)."""
        kinds = self.h_kinds()
        if focus:
            kinds = [kinds[i] for i in focus]
        return self.pick(kinds)

    def h_kinds(self):
        return [
            (4, self.h_cps),
            (2, self.h_deep_cps),
            (4, self.h_procs),
            (2, self.h_table),
            (2, self.h_loop_capture),
            (3, self.h_set_capture),
            (2, self.h_mutual),
            (2, self.h_variadic),
            (2, self.h_hot),
            (1, self.h_returning),
            (0.5, self.h_nested_lambdas),
            (2, self.r_redef),
            (3, self.test_form),
        ]

    def ho_program(self):
        out = ['; generated by tests/differential/gen.py, seed %d (higher-order shape)' % self.seed,
               '(define (show label x) (display label) (display " ") (write x) (newline))']
        body = []
        if self.chance(0.35):
            # a small program of one or two kinds of form: what one kind
            # does to the heap and the collector is not diluted by the rest
            focus = self.r.sample(range(len(self.h_kinds()) - 1), self.r.randint(1, 2))
            for _ in range(self.r.randint(2, 5)):
                if self.cost > PROGRAM_BUDGET:
                    break
                body.append(self.h_form(focus))
        else:
            for _ in range(self.r.randint(1, 4)):
                body.append(self.h_top_function() if self.chance(0.5) else self.function())
            for _ in range(self.r.randint(6, 14)):
                if self.cost > PROGRAM_BUDGET:
                    break
                x = self.r.random()
                if x < 0.1:
                    body.append(self.h_top_function())
                elif x < 0.15:
                    body.append(self.global_var())
                else:
                    body.append(self.h_form())
        if self.need_helpers:
            out += self.HELPERS
        if self.redef_used:
            out += self.REDEF_PRELUDE
        out += body
        if self.chance(SECOND_PASS_SHARE):
            out += self.second_pass(body)
        expect_error = self.chance(0.2)
        if expect_error:
            out.append(self.final_error())
        return Program(self.seed, '\n'.join(out) + '\n', expect_error, self.redef_used)

    def final_error(self):
        """A last form that is certain to end the program with an uncaught error."""
        opts = [
            '(show "end" (car %d))' % self.r.randint(0, 9),
            '(print "end " (vector-ref (vector 1 2) 5))',
            "(error \"final failure\" 1 \"two\" 'three)",
            "(raise 'final)",
            "(raise (list 'final 42))",
            '(+ 2305843009213693951 1)',
            '(quotient 1 0)',
            'undefined-name-xyz',
            '(string-ref "abc" 10)',
            '(for-each (lambda (x) (print "end " x) (when (= x 2) (car x))) (list 1 2 3))',
            "(guard (e ((string? e) 'no)) (raise 'sym))",
            '(map (lambda (x) (if (= x 3) (error "in map" x) x)) (list 1 2 3 4))',
            '((lambda (x) x))',
        ]
        fns = [f for f in self.fns if f.params]
        if fns:
            opts.append('(%s)' % self.choice(fns).name)
        if self.deep_fns:
            opts.append('(show "end" (%s %d))' % (self.choice(self.deep_fns), self.r.randint(0, 20)))
        return self.choice(opts)

    def second_pass(self, body):
        """The program's top-level test forms once more, after waiting (at
        most 600 ms) for the JIT's compiled count to stop growing: at
        thresholds above 0 the functions those forms call were compiled on
        the background thread during the first pass, and now run natively.
        Nothing printed depends on how long the wait took."""
        forms = []
        for item in body:
            for line in item.split('\n'):
                if line.startswith('('):
                    forms.append([line])
                elif forms:
                    forms[-1].append(line)
        again = ['\n'.join(f) for f in forms if f[0].startswith(('(show ', '(print ', '(guard '))]
        wait = ('(let ((t0 (current-time-ms))) (let settle ((seen -1) (since (current-time-ms))) '
                '(let ((now (current-time-ms)) (n (get (jit-stats) :compiled 0))) '
                '(cond ((> (- now t0) 600) #f) ((not (= n seen)) (settle n now)) '
                '((and (> n 0) (> (- now since) 100)) #t) (else (settle seen since))))))')
        return ['(print "second pass")', wait] + again

    def program(self):
        out = ['; generated by tests/differential/gen.py, seed %d' % self.seed,
               '(define (show label x) (display label) (display " ") (write x) (newline))']
        body = []
        for _ in range(self.r.randint(2, 6)):
            body.append(self.global_var() if self.chance(0.45) else self.function())
        for _ in range(self.r.randint(10, 24)):
            if self.cost > PROGRAM_BUDGET:
                break
            x = self.r.random()
            if x < 0.08:
                body.append(self.global_var())
            elif x < 0.2:
                body.append(self.function())
            else:
                body.append(self.test_form())
        if self.need_helpers:
            out += self.HELPERS
        if self.redef_used:
            out += self.REDEF_PRELUDE
        out += body
        if self.chance(SECOND_PASS_SHARE):
            out += self.second_pass(body)
        expect_error = self.chance(0.3)
        if expect_error:
            out.append(self.final_error())
        return Program(self.seed, '\n'.join(out) + '\n', expect_error, self.redef_used)


SHAPES = ('mixed', 'classic', 'higher-order')
HO_SHARE = 0.4     # share of higher-order programs in the mixed shape


def generate(seed, shape='mixed'):
    """The program for an integer seed.  shape: 'classic' (first-order
    code with a few higher-order forms), 'higher-order' (closures passed,
    returned, stored and called in tail position, CPS, variadic procedures,
    hot functions), or 'mixed': higher-order for a share HO_SHARE of the
    seeds, drawn from the seed alone."""
    if shape not in SHAPES:
        raise ValueError('unknown shape %r' % shape)
    if shape == 'mixed':
        ho = random.Random('shape %d' % seed).random() < HO_SHARE
        shape = 'higher-order' if ho else 'classic'
    g = Gen(seed)
    return g.ho_program() if shape == 'higher-order' else g.program()


def main(argv):
    shape = 'mixed'
    args = []
    for a in argv[1:]:
        if a.startswith('--shape='):
            shape = a[len('--shape='):]
        else:
            args.append(a)
    if len(args) != 1 or shape not in SHAPES:
        print('usage: gen.py [--shape=%s] SEED   (prints the program for SEED)' % '|'.join(SHAPES),
              file=sys.stderr)
        return 2
    sys.stdout.write(generate(int(args[0]), shape).text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
