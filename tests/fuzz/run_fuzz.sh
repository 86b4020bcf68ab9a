#!/usr/bin/env bash
# run_fuzz.sh SRC_DIR SECONDS: builds the reader's libFuzzer target and runs
# it for SECONDS seconds. Exit status 0 iff libFuzzer found nothing.
#
# The target is compiled with clang straight from SRC_DIR/vm/*.c plus
# fuzz_reader.c, with ASan, UBSan (every report fatal) and libFuzzer, into a
# fresh temporary directory; the CMake build is not involved. The Boehm
# collector is the system libgc: it works under ASan once leak detection is
# off (the collector frees nothing through free(), so LeakSanitizer would
# flag the whole heap) and ASan's fake stack frames are off (the collector
# does not scan them, so objects referenced only from there could be freed).
#
# Seeds: the public conformance programs (SX_CONFORMANCE_DIR, by default
# SRC_DIR/../shared/conformance) and tests/fuzz/corpus/*, copied so the run
# never writes into the source tree. A dictionary of SX syntax fragments is
# written next to them. On a crash, hang or out-of-memory the temporary
# directory is kept and the inputs that caused it are listed; add them to
# tests/fuzz/corpus/ once the bug is fixed. Environment: CLANG (compiler,
# default clang), FUZZ_JOBS_DIR (use this directory instead of a temporary
# one), FUZZ_MAX_LEN (largest input, default 16384).
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 SRC_DIR SECONDS" >&2
    exit 2
fi
src=$(cd "$1" && pwd) || exit 2
secs=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CLANG:-clang}
conf=${SX_CONFORMANCE_DIR:-$src/../shared/conformance}

if [ -n "${FUZZ_JOBS_DIR:-}" ]; then
    work=$FUZZ_JOBS_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/sx-fuzz-reader.XXXXXX") || exit 2
fi
keep=no
cleanup() {
    if [ "$keep" = no ] && [ -z "${FUZZ_JOBS_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

gc_libs=$(pkg-config --libs bdw-gc 2>/dev/null || echo -lgc)
echo "fuzz/reader: building in $work"
# shellcheck disable=SC2086
if ! "$cc" -std=gnu11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I "$src" -D_GNU_SOURCE "$src"/vm/*.c "$here/fuzz_reader.c" \
    -o "$work/fuzz_reader" $gc_libs -lm; then
    echo "fuzz/reader: build failed" >&2
    keep=yes
    exit 1
fi

mkdir -p "$work/corpus" "$work/artifacts"
seeds=0
for f in "$conf"/*.sx "$here"/corpus/*; do
    [ -f "$f" ] || continue
    cp "$f" "$work/corpus/seed-$seeds-$(basename "$f")"
    seeds=$((seeds + 1))
done
# One "token" per line, in libFuzzer's dictionary syntax.
cat >"$work/sx.dict" <<'EOF'
"("
")"
"{"
"}"
"#("
"'"
"`"
","
",@"
" . "
"\""
"\\x41;"
"\\u00e9"
"\\n"
"\\\x0a  "
"#\\"
"#\\x3bb"
"#\\space"
"#\\newline"
"#|"
"|#"
"#;"
";"
"\x0a"
"#t"
"#true"
"#false"
"#x"
"#b"
"#o"
"#d"
"#e"
"#i"
"+inf.0"
"-inf.0"
"+nan.0"
"1e308"
"1e-400"
".5"
"5."
"2305843009213693951"
"-2305843009213693952"
"2305843009213693952"
":kw"
"nil"
"\xce\xbb"
"\xf0\x9f\x98\x80"
"\xed\xa0\x80"
"\xc0\x80"
EOF

echo "fuzz/reader: $seeds seed inputs, running for ${secs}s"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_stack_use_after_return=0:allocator_may_return_null=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$work/fuzz_reader" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -max_len="${FUZZ_MAX_LEN:-16384}" -dict="$work/sx.dict" -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" 2>"$work/fuzz.log"
status=$?
grep -E '^(stat::|Done|#[0-9]+ +DONE)' "$work/fuzz.log"
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
found=$(find "$work/artifacts" -type f | sort)
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    keep=yes
    tail -n 60 "$work/fuzz.log"
    echo "fuzz/reader: FAILED (libFuzzer status $status) after ${runs:-?} runs; log $work/fuzz.log"
    for f in $found; do
        echo "  input $f:"
        od -c "$f" | head -n 20 | sed 's/^/    /'
    done
    exit 1
fi
echo "fuzz/reader: ok, ${runs:-?} runs in ${secs}s, no crash"
