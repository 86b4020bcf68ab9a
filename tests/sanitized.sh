#!/bin/sh
# sanitized.sh: the sanitizer build's test wrapper and report check.
#
#   sanitized.sh DIR COMMAND [ARG...]   runs COMMAND; fails if DIR gets a report
#   sanitized.sh --check DIR...         lists the reports under each DIR;
#                                       exit status 1 if there is one
#
# COMMAND runs with ASAN_OPTIONS and UBSAN_OPTIONS as inherited (tests/
# CMakeLists.txt sets them per test) plus log_path=DIR/asan and DIR/ubsan,
# so every process it starts, the pool's workers included, writes its ASan
# reports to DIR/asan.PID instead of stderr. A worker that aborts on a
# report is replaced and its request served again, so the client, and the
# test, see a good answer: the report file is what is left of it.
# UBSan is a runtime of its own in a gcc build (libubsan beside libasan) and
# its log_path does not take effect there: its reports stay on stderr. The
# tests echo the pool's stderr (tests/integration/sxtest.py), so COMMAND's
# output is also kept, in DIR/output, and a UBSan report in it counts too
# ("FILE.c:LINE:COL: runtime error: ...").
# DIR is emptied first. The exit status is COMMAND's, or 1 when it passed
# but left a report (printed, at most 40 lines each).
#
# Not counted: a deadly signal (SEGV, BUS, ILL, FPE, stack overflow) whose
# faulting frame is in a shared object outside /usr and /lib, that is in
# code the native tier generated (loaded from TMPDIR or the code cache).
# Generated code is not instrumented, such a signal is not a sanitizer
# finding, and the tests that inject one on purpose (SXPOOL_INJECT
# null-deref) check the death itself. The runtime it calls is instrumented
# and its reports all count.
set -u

# True if report file $1 is only a deadly signal in generated code.
in_generated_code() {
    grep -Eq 'ERROR: AddressSanitizer: (SEGV|BUS|ILL|FPE|stack-overflow) on ' "$1" || return 1
    # any other kind of report in the same file counts
    if grep -E 'ERROR: AddressSanitizer: |runtime error: |ERROR: LeakSanitizer' "$1" |
        grep -Evq 'ERROR: AddressSanitizer: (SEGV|BUS|ILL|FPE|stack-overflow) on '; then
        return 1
    fi
    frame0=$(grep -E '^ *#0 ' "$1" | head -n 1)
    module=$(printf '%s\n' "$frame0" | sed -n 's/.*(\(\/[^)+]*\)+0x[0-9a-f]*).*/\1/p')
    case "$module" in
        "" | /usr/* | /lib/* | /lib64/*) return 1 ;;
    esac
    # the binary itself is not generated code either
    case "$frame0" in
        *" in "*) return 1 ;;
    esac
    return 0
}

# Prints the reports under the directories given; status 1 if any counts.
check() {
    found=0
    for dir in "$@"; do
        [ -d "$dir" ] || continue
        for f in $(find "$dir" -type f -name 'asan.*' -o -type f -name 'ubsan.*' | sort); do
            if in_generated_code "$f"; then
                echo "sanitized: not counted (a signal in generated code): $f"
                continue
            fi
            found=1
            echo "sanitized: sanitizer report $f:"
            head -n 40 "$f" | sed 's/^/    /'
        done
        for f in $(find "$dir" -type f -name output | sort); do
            if grep -Eq "$UBSAN_REPORT" "$f"; then
                found=1
                echo "sanitized: UBSan report in $f:"
                grep -E -A 12 "$UBSAN_REPORT" "$f" | head -n 40 | sed 's/^/    /'
            fi
        done
    done
    return $found
}
UBSAN_REPORT='\.(c|h|cc|cpp):[0-9]+:[0-9]+: runtime error: '


if [ "${1:-}" = --check ]; then
    shift
    check "$@"
    exit $?
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 DIR COMMAND [ARG...] | $0 --check DIR..." >&2
    exit 2
fi
dir=$1
shift
rm -rf "$dir"
mkdir -p "$dir" || exit 2
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$dir/asan"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$dir/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS
{
    "$@"
    echo $? >"$dir/status"
} 2>&1 | tee "$dir/output"
status=$(cat "$dir/status" 2>/dev/null || echo 1)
if ! check "$dir"; then
    echo "sanitized: FAILED: a process of this test left a sanitizer report (above)"
    [ $status -ne 0 ] || status=1
fi
exit $status
