#!/usr/bin/env bash
# run.sh [SXPOOL] [--tiers=cek,vm,jit] [--out=DIR] [--only=P,...]: language benchmarks.
#
# Runs each program in this directory (fib, tak, queens, closure, ack,
# cpstak, deriv, primes; --only picks some) on every implementation that is
# installed: sxpool (`eval --tier=T` for each tier asked for and available
# in the binary), lua5.4, luajit (the .lua files), guile (the .scm files),
# chez (`scheme --script`, the .ss file where there is one, else the .scm)
# and python3 (the .py files; not every program has one), which
# bench/install-deps.sh installs (LuaJIT as Debian's luajit2:
# /usr/bin/luajit; Chez Scheme as chezscheme). First every program runs
# once on every implementation and the checksum line it prints must be the
# expected one; any difference stops the run (exit 1) before anything is timed.
# Then hyperfine times each program (--warmup 1 --runs 5, no shell in
# between, JSON in DIR, by default a fresh temporary directory) and a table
# of medians in seconds follows, with the ratio to lua5.4 in parentheses
# ("-" where an implementation has no file for the program), then the
# geometric mean of each implementation's ratio to chez over the programs
# both ran, and the load average before and after the timing.
# A run that fails while being timed shows as "failed" and makes the exit
# status 1. A missing implementation is skipped with a note. SXPOOL
# defaults to the first of build-bench/, build/ in the source tree, or
# `sxpool` on PATH.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
benches=(fib tak queens closure ack cpstak deriv primes)
declare -A expect=([fib]=832040 [tak]=4200 [queens]=64400 [closure]=1800000
    [ack]=40930 [cpstak]=700 [deriv]=8600000 [primes]=168000)

sxpool=
tiers=cek
out=
for arg in "$@"; do
    case "$arg" in
        --tiers=*) tiers=${arg#--tiers=} ;;
        --out=*) out=${arg#--out=} ;;
        --only=*) IFS=, read -r -a benches <<<"${arg#--only=}" ;;
        -h|--help)
            sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *) sxpool=$arg ;;
    esac
done

note() { echo "note: $*" >&2; }

for tool in hyperfine python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "run.sh: $tool is needed to time the runs and make the table" \
            "(bench/install-deps.sh installs it)" >&2
        exit 2
    fi
done

if [ -z "$sxpool" ]; then
    for c in "$root/build-bench/sxpool" "$root/build/sxpool" "$(command -v sxpool || true)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then sxpool=$c; break; fi
    done
fi

# ---- implementations: name, file extension, command prefix ----
names=()
declare -A ext cmd

add_impl() { names+=("$1"); ext[$1]=$2; cmd[$1]=$3; }

if [ -n "$sxpool" ] && [ -x "$sxpool" ]; then
    probe=$(mktemp "${TMPDIR:-/tmp}/sx-probe.XXXXXX.sx")
    echo '(print (+ 1 2))' >"$probe"
    IFS=, read -r -a tier_list <<<"$tiers"
    for t in "${tier_list[@]}"; do
        if [ "$("$sxpool" eval --tier="$t" "$probe" 2>/dev/null)" = 3 ]; then
            add_impl "sxpool-$t" sx "$(printf '%q eval --tier=%q' "$sxpool" "$t")"
        else
            note "sxpool --tier=$t is not available in $sxpool; skipped"
        fi
    done
    rm -f "$probe"
else
    note "no sxpool binary found (build it or pass its path); SX skipped"
fi

missing="not installed (bench/install-deps.sh installs it); skipped"
if command -v lua5.4 >/dev/null; then add_impl lua5.4 lua lua5.4; else note "lua5.4 $missing"; fi
# luajit: /usr/bin/luajit from Debian's luajit2 (or from luajit where that is installed)
if command -v luajit >/dev/null; then add_impl luajit lua luajit; else note "luajit $missing"; fi
if command -v guile >/dev/null; then add_impl guile scm guile; else note "guile $missing"; fi
# chez: Debian's chezscheme installs /usr/bin/scheme
if command -v scheme >/dev/null && scheme --version >/dev/null 2>&1; then
    add_impl chez ss "scheme --script"
else
    note "chez (scheme) $missing"
fi

if command -v python3 >/dev/null; then add_impl python3 py python3; fi

if [ ${#names[@]} -eq 0 ]; then
    echo "run.sh: no implementation to run" >&2
    exit 1
fi

for b in "${benches[@]}"; do
    if [ -z "${expect[$b]:-}" ]; then echo "run.sh: no program $b" >&2; exit 2; fi
done

# The file of program $1 for implementation $2, or nothing: chez runs the
# .ss variant where there is one (a program using what Guile and Chez
# spell differently), else the .scm.
file_of() {
    local f="$here/$1.${ext[$2]}"
    if [ "${ext[$2]}" = ss ] && [ ! -e "$f" ]; then f="$here/$1.scm"; fi
    if [ -e "$f" ]; then echo "$f"; fi
}

# ---- checksums ----
echo "checking checksums..."
bad=0
for b in "${benches[@]}"; do
    for impl in "${names[@]}"; do
        file=$(file_of "$b" "$impl")
        [ -n "$file" ] || continue
        got=$(eval "${cmd[$impl]} $(printf '%q' "$file")" 2>/dev/null | tail -n 1)
        if [ "$got" != "${expect[$b]}" ]; then
            echo "  $b on $impl printed '${got}', expected '${expect[$b]}'" >&2
            bad=1
        fi
    done
done
if [ $bad -ne 0 ]; then
    echo "run.sh: checksums disagree; nothing timed" >&2
    exit 1
fi
echo "  all ${#benches[@]} programs print the same checksum on ${names[*]}"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- timing ----
# One hyperfine call per program and implementation, so a run that crashes
# (hyperfine stops at a nonzero exit) costs only its own cell.
if [ -z "$out" ]; then out=$(mktemp -d "${TMPDIR:-/tmp}/sx-bench.XXXXXX"); fi
mkdir -p "$out"
failed=0
for b in "${benches[@]}"; do
    echo "timing $b..."
    for impl in "${names[@]}"; do
        json="$out/$b.$impl.json"
        file=$(file_of "$b" "$impl")
        [ -n "$file" ] || continue
        if ! hyperfine --shell=none --warmup 1 --runs 5 --style none --export-json "$json" \
            -n "$impl" "${cmd[$impl]} $(printf '%q' "$file")"; then
            echo "  $b on $impl failed while being timed (crash or nonzero exit)" >&2
            rm -f "$json"
            failed=1
        fi
    done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- table ----
have=()
for b in "${benches[@]}"; do
    for impl in "${names[@]}"; do
        if [ -n "$(file_of "$b" "$impl")" ]; then have+=("$b.$impl"); fi
    done
done
python3 - "$out" "${benches[*]}" "${names[*]}" "${have[*]}" "$load_before" "$load_after" <<'EOF'
import json, math, sys

out, benches, names, have = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), set(sys.argv[4].split())
medians = {}
for b in benches:
    for n in names:
        try:
            with open(f"{out}/{b}.{n}.json") as f:
                medians[(b, n)] = json.load(f)["results"][0]["median"]
        except FileNotFoundError:
            pass

def cell(b, n):
    m = medians.get((b, n))
    if m is None:
        return "failed" if f"{b}.{n}" in have else "-"
    base = medians.get((b, "lua5.4"))
    return f"{m:.3f} ({m / base:.1f}x)" if base else f"{m:.3f}"

rows = [["benchmark"] + names] + [[b] + [cell(b, n) for n in names] for b in benches]
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
print("\nmedian seconds of 5 runs (ratio to lua5.4)")
for k, r in enumerate(rows):
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if k == 0:
        print("  ".join("-" * w for w in widths))
if "chez" in names:
    print("\ngeometric mean of the ratio to chez (programs both ran)")
    for n in names:
        rs = [medians[(b, n)] / medians[(b, "chez")] for b in benches
              if (b, n) in medians and (b, "chez") in medians]
        if rs:
            g = math.exp(sum(math.log(r) for r in rs) / len(rs))
            print(f"  {n:14} {g:6.2f}x over {len(rs)} programs")
print(f"\nload average (1, 5, 15 min): {sys.argv[5]} before timing, {sys.argv[6]} after")
print(f"hyperfine JSON in {out}")
EOF
exit $failed
