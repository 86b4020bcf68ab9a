#!/usr/bin/env bash
# run_target.sh SRC_DIR TARGET SECONDS: builds one of the libFuzzer targets
# of the supervisor, ipc and vm (ipc_frame, http, record, json; the reader
# has run_fuzz.sh) and runs it for SECONDS seconds. Exit status 0 iff libFuzzer
# found nothing.
#
# Each target is compiled with clang straight from SRC_DIR plus
# fuzz_TARGET.c, with ASan, UBSan (every report fatal) and libFuzzer, into a
# fresh temporary directory; the CMake build is not involved. Except json,
# these targets use no garbage collector, so LeakSanitizer stays on: a
# request or buffer that is never freed is a finding.
#   ipc_frame  ipc/ipc.c
#   http       supervisor/sup_http.c (included by fuzz_sup_env.h), ipc/ipc.c and llhttp
#   record     the same, store/*.c, LMDB and libpq's header (store_pq.c
#              loads libpq itself when a store in PostgreSQL is opened)
#   json       vm/*.c and the Boehm collector (leak detection off, as for
#              the reader): json-decode and json-encode round trips
#
# Seeds: tests/fuzz/corpus/TARGET/* (crashers found earlier among them:
# they are regression tests) and, for http, every request of
# tests/integration/http_corpus (its bytes after the "--" line, behind two
# settings bytes, see fuzz_http.c), copied so the run never writes into the
# source tree. On a crash, hang, leak or out-of-memory the temporary
# directory is kept and the inputs that caused it are listed; add them to
# tests/fuzz/corpus/TARGET/ once the bug is fixed. Environment: CLANG
# (compiler, default clang), LLHTTP_DIR and LLHTTP_INCLUDE (llhttp's C
# sources and header, default Debian's), FUZZ_JOBS_DIR (use this directory
# instead of a temporary one).
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 SRC_DIR TARGET SECONDS" >&2
    exit 2
fi
src=$(cd "$1" && pwd) || exit 2
target=$2
secs=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CLANG:-clang}
llhttp=${LLHTTP_DIR:-/usr/share/llhttp}
llhttp_inc=${LLHTTP_INCLUDE:-/usr/share/include/llhttp}
llhttp_src="$llhttp/api.c $llhttp/http.c $llhttp/llhttp.c"

case $target in
ipc_frame) sources="$src/ipc/ipc.c" libs="" max_len=4096 ;;
http) sources="$src/ipc/ipc.c $llhttp_src" libs="" max_len=80000 ;;
record)
    # the whole store: LMDB's backend and PostgreSQL's (libpq, loaded
    # with dlopen by store_pq.c, not linked), which store_open picks between
    sources="$src/ipc/ipc.c $src/store/*.c $llhttp_src"
    cflags=$(pkg-config --cflags libpq)
    libs="$(pkg-config --libs lmdb 2>/dev/null || echo -llmdb) -ldl"
    max_len=4096
    ;;
json)
    # the vm with the system's Boehm collector (see run_fuzz.sh for why leak
    # detection and fake stack frames are off for it)
    sources="$src/vm/*.c"
    libs="$(pkg-config --libs bdw-gc 2>/dev/null || echo -lgc) -lm"
    max_len=16384
    asan_default=detect_leaks=0:detect_stack_use_after_return=0:allocator_may_return_null=1
    ;;
*)
    echo "$0: unknown target $target (ipc_frame, http, record, json)" >&2
    exit 2
    ;;
esac

if [ -n "${FUZZ_JOBS_DIR:-}" ]; then
    work=$FUZZ_JOBS_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/sx-fuzz-$target.XXXXXX") || exit 2
fi
keep=no
cleanup() {
    if [ "$keep" = no ] && [ -z "${FUZZ_JOBS_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

echo "fuzz/$target: building in $work"
# llhttp's generated C is not ours to warn about: -w for it alone would need
# a second compile, so warnings are shown, not fatal, here.
# shellcheck disable=SC2086
if ! "$cc" -std=gnu11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I "$src" -I "$llhttp_inc" ${cflags:-} -D_GNU_SOURCE $sources "$here/fuzz_$target.c" \
    -o "$work/fuzz_$target" $libs 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    echo "fuzz/$target: build failed" >&2
    keep=yes
    exit 1
fi

mkdir -p "$work/corpus" "$work/artifacts"
seeds=0
for f in "$here/corpus/$target"/*; do
    [ -f "$f" ] || continue
    cp "$f" "$work/corpus/seed-$seeds-$(basename "$f")"
    seeds=$((seeds + 1))
done
if [ "$target" = http ]; then
    for f in "$src"/tests/integration/http_corpus/*.http; do
        [ -f "$f" ] || continue
        # settings 0x42: max_body 4096, app status 200, reads of 1..64 bytes
        { printf '\102\007'; sed '1,/^--$/d' "$f"; } >"$work/corpus/http-$seeds-$(basename "$f")"
        seeds=$((seeds + 1))
    done
fi

echo "fuzz/$target: $seeds seed inputs, running for ${secs}s"
ASAN_OPTIONS=${ASAN_OPTIONS:-${asan_default:-detect_leaks=1:allocator_may_return_null=1}} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$work/fuzz_$target" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -max_len="$max_len" -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" 2>"$work/fuzz.log"
status=$?
grep -E '^(stat::|Done|#[0-9]+ +DONE)' "$work/fuzz.log"
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
found=$(find "$work/artifacts" -type f | sort)
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    keep=yes
    tail -n 60 "$work/fuzz.log"
    echo "fuzz/$target: FAILED (libFuzzer status $status) after ${runs:-?} runs; log $work/fuzz.log"
    for f in $found; do
        echo "  input $f:"
        od -c "$f" | head -n 20 | sed 's/^/    /'
    done
    exit 1
fi
echo "fuzz/$target: ok, ${runs:-?} runs in ${secs}s, no crash"
