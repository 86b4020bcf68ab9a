#!/bin/bash
# bench/lang/percall.sh: instructions per call of fib and tak, counted by
# callgrind, for sxpool's VM and native tiers, lua5.4 and LuaJIT.
#
#   bash bench/lang/percall.sh [SXPOOL]      (default build/sxpool)
#
# Each program runs twice under `valgrind --tool=callgrind`, with a small and
# a larger argument (fib 20 and 24; tak 18 12 6 repeated 5 and 20 times);
# the difference of the two instruction counts divided by the difference of
# the two call counts is the cost of one call, with start-up, loading and
# compiling (which both runs share) cancelled out. Instruction counts do
# not depend on the machine's load, unlike times; they are user-space
# instructions of the process itself (libgccjit's compiler runs in a child
# process and is not counted, nor is anything the kernel does).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sx=${1:-$root/build/sxpool}
[[ -x $sx ]] || { echo "percall: no sxpool binary at $sx" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "percall: valgrind is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ir FILE CMD...: user-space instructions of CMD
ir() {
    local out=$1
    shift
    SXPOOL_STACK_REEXEC=1 valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$@" \
        >"$out" 2>"$work/vg.err" || { cat "$work/vg.err" >&2; return 1; }
    grep -o 'Collected : [0-9]*' "$work/vg.err" | awk '{print $3}'
}

# The programs, with their argument replaced.
sed 's/(print (fib 30))/(print (fib 20))/' "$root/bench/lang/fib.sx" >"$work/fib.a.sx"
sed 's/(print (fib 30))/(print (fib 24))/' "$root/bench/lang/fib.sx" >"$work/fib.b.sx"
sed 's/print(fib(30))/print(fib(20))/' "$root/bench/lang/fib.lua" >"$work/fib.a.lua"
sed 's/print(fib(30))/print(fib(24))/' "$root/bench/lang/fib.lua" >"$work/fib.b.lua"
sed 's/(repeat 600 0)/(repeat 5 0)/' "$root/bench/lang/tak.sx" >"$work/tak.a.sx"
sed 's/(repeat 600 0)/(repeat 20 0)/' "$root/bench/lang/tak.sx" >"$work/tak.b.sx"
sed 's/for _ = 1, 600 do/for _ = 1, 5 do/' "$root/bench/lang/tak.lua" >"$work/tak.a.lua"
sed 's/for _ = 1, 600 do/for _ = 1, 20 do/' "$root/bench/lang/tak.lua" >"$work/tak.b.lua"
for f in fib.a fib.b tak.a tak.b; do
    for ext in sx lua; do
        cmp -s "$work/$f.$ext" "$root/bench/lang/${f%.*}.$ext" &&
            { echo "percall: could not set the argument of ${f%.*}.$ext" >&2; exit 1; }
    done
done
# calls: fib(n) makes 2 fib(n+1) - 1 calls; tak 18 12 6 makes 63609
fib_calls=$(((2 * 75025 - 1) - (2 * 10946 - 1)))
tak_calls=$((15 * 63609))

impls=("sxpool-vm|$sx eval --tier=vm" "sxpool-jit|$sx eval --tier=jit --jit-threshold=0"
       "lua5.4|lua5.4" "luajit|luajit")
printf '%-12s %10s %10s\n' impl fib tak
for entry in "${impls[@]}"; do
    name=${entry%%|*}
    cmd=${entry#*|}
    exe=${cmd%% *}
    if ! command -v "$exe" >/dev/null; then
        printf '%-12s %10s %10s\n' "$name" - -
        continue
    fi
    ext=sx
    [[ $name == lua* ]] && ext=lua
    row=()
    for prog in fib tak; do
        # shellcheck disable=SC2086
        a=$(ir "$work/$prog.a.txt" $cmd "$work/$prog.a.$ext")
        # shellcheck disable=SC2086
        b=$(ir "$work/$prog.b.txt" $cmd "$work/$prog.b.$ext")
        calls=${prog}_calls
        row+=("$(echo "scale=1; ($b - $a) / ${!calls}" | bc)")
    done
    printf '%-12s %10s %10s\n' "$name" "${row[0]}" "${row[1]}"
done
