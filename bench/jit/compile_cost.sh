#!/bin/sh
# Measures what the native tier costs: compile time per batch and per
# function, the cost of loading a function from the code cache, and the
# resident memory added by compiled code.
#
#   bench/jit/compile_cost.sh [SXPOOL] [N]
#
# Generates N distinct functions; runs them on the VM (nothing compiled),
# then with the JIT in batches (threshold 1, the compile thread batching
# what gets hot together), then with threshold 0 (one function per
# compile), then again from the warm code cache. Prints one line each.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sxpool=${1:-$here/../../build/sxpool}
n=${2:-100}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sxjitcost.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

prog=$tmp/funcs.sx
{
    i=0
    while [ "$i" -lt "$n" ]; do
        echo "(define (f$i x) (let loop ((k 0) (acc $i)) (if (= k x) acc (loop (+ k 1) (+ acc (* k $((i % 7 + 1))))))))"
        i=$((i + 1))
    done
    echo "(define (call-all i acc) (if (= i $n) acc (call-all (+ i 1) (+ acc ((eval-name i) 10)))))"
} >"$prog"
# eval-name: a dispatch over the generated functions (no eval in SX)
{
    echo "(define (eval-name i) (case i"
    i=0
    while [ "$i" -lt "$n" ]; do echo "  (($i) f$i)"; i=$((i + 1)); done
    echo "  (else #f)))"
    echo "(define start (current-time-ms))"
    echo "(define (rounds r) (when (< r 3) (call-all 0 0) (rounds (+ r 1))))"
    echo "(rounds 0)"
} >>"$prog"
# the JIT runs wait (bounded) until the compile thread has caught up
jprog=$tmp/funcs-jit.sx
{
    cat "$prog"
    echo "(define (wait) (when (and (< (+ (get (jit-stats) :compiled) (get (jit-stats) :cache-hits)) (* 2 $n)) (< (- (current-time-ms) start) 60000)) (call-all 0 0) (wait)))"
    echo "(wait)"
    echo "(print (get (jit-stats) :compiled) \" \" (get (jit-stats) :cache-hits))"
} >"$jprog"

rss() { /usr/bin/time -f '%M %e' "$@" 2>&1 >/dev/null | tail -1; }

vm=$(rss "$sxpool" eval --tier=vm "$prog")
echo "vm (nothing compiled):         max RSS ${vm% *} KB, ${vm#* } s"
SXPOOL_JIT_VERBOSE=1 /usr/bin/time -f '%M KB max RSS, %e s' "$sxpool" eval --tier=jit \
    --jit-threshold=1 "$jprog" 2>"$tmp/batches" >"$tmp/out"
echo "jit, batched (threshold 1):    $(tail -1 "$tmp/batches"); $(cat "$tmp/out") compiled/cache-hits;" \
    "batches (functions, ms): $(grep -o 'batch of [0-9]* ([0-9]* lowered) in [0-9.]* ms' "$tmp/batches" |
        sed 's/batch of \([0-9]*\) ([0-9]* lowered) in \([0-9.]*\) ms/\1:\2/' | paste -sd' ' -)"
t0=$(rss "$sxpool" eval --tier=jit --jit-threshold=0 "$jprog")
echo "jit, one per compile (thr. 0): max RSS ${t0% *} KB, ${t0#* } s total for $n functions"
mkdir -p "$tmp/cache"
"$sxpool" eval --tier=jit --jit-threshold=0 --jit-cache="$tmp/cache" "$jprog" >/dev/null 2>&1
hit=$(rss "$sxpool" eval --tier=jit --jit-threshold=0 --jit-cache="$tmp/cache" "$jprog")
echo "jit, all from the code cache:  max RSS ${hit% *} KB, ${hit#* } s total for $n functions"
