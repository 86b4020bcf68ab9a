#!/bin/sh
# Installs the dependencies, checks that the build and the tests use only
# what they install (tests/check-deps.sh), then runs two phases:
#   1. the normal build (warnings are errors) and the whole test suite;
#   2. a build with ASan and UBSan (and the VM's switch dispatch, so both
#      dispatch builds are tested) and, on it, the unit, conformance (the
#      jit tier's at every threshold included) and integration tests and a
#      short differential run. A sanitizer report from any process, a worker
#      whose request was served again included, fails the phase
#      (tests/sanitized.sh).
# Phase 2 runs even when phase 1 failed; both results are printed last, and
# the exit status is 0 only if both passed.
# Extra arguments go to the first ctest run (e.g. -L unit).
# SXPOOL_BUILD_DIR and SXPOOL_ASAN_BUILD_DIR override the build directories
# (build, build-asan).
set -u
cd "$(dirname "$0")/.." || exit 2
# The programs Debian installs come first, not a python3 or cmake that PATH
# would find before them (pyenv, ~/.local): what the tests run is what
# check-deps checks.
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH
build=${SXPOOL_BUILD_DIR:-build}
asan=${SXPOOL_ASAN_BUILD_DIR:-build-asan}
jobs=$(nproc)
start=$(date +%s)

./deploy/install-deps.sh || exit 1
./tests/check-deps.sh || exit 1

elapsed() { echo "$(($(date +%s) - $1)) s"; }

# ---- phase 1: the normal build, every test ----
t1=$(date +%s)
phase1() {
    # -U: program paths cached by an earlier configure are found again on PATH
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSXPOOL_WERROR=ON \
        -UPYTHON3 -UCLANG >/dev/null || return 1
    ./tests/check-deps.sh --build="$build" || return 1
    cmake --build "$build" -j"$jobs" || return 1
    (cd "$build" && ctest --output-on-failure --timeout 900 -j2 "$@")
}
if phase1 "$@"; then r1=passed; else r1=FAILED; fi
d1=$(elapsed "$t1")

# ---- phase 2: ASan and UBSan ----
# Its C stack is smaller (vm/sx_api.c): the files that recurse 100,000 deep
# through built-ins or native code are left out where they cannot run
# (tests/CMakeLists.txt), and nothing else.
t2=$(date +%s)
phase2() {
    cmake -S . -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DSXPOOL_WERROR=ON -DSXPOOL_SANITIZE=ON \
        -DSXPOOL_COMPUTED_GOTO=OFF -UPYTHON3 -UCLANG >/dev/null || return 1
    cmake --build "$asan" -j"$jobs" || return 1
    reports=$(cd "$asan" && pwd)/tests/sanitizer-reports
    rm -rf "$reports"
    # the short differential run: differential/asan-short where it exists
    diff_test=differential/fixed-seed
    if (cd "$asan" && ctest -N -R '^differential/asan-short$' | grep -q 'Total Tests: 1$'); then
        diff_test=differential/asan-short
    fi
    status=0
    # tests/CMakeLists.txt gives each of its tests its own report directory;
    # these options reach the others (differential/)
    (cd "$asan" &&
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$reports/other/asan \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/other/ubsan \
        ctest --output-on-failure --timeout 900 -j2 \
            -R "^(unit/|conformance/|integration/|$diff_test\$)") || status=1
    if sh tests/sanitized.sh --check "$reports"; then
        echo "run-all: phase 2 left no sanitizer report"
    else
        echo "run-all: phase 2 left sanitizer reports (above, in $reports)"
        status=1
    fi
    return $status
}
if phase2; then r2=passed; else r2=FAILED; fi
d2=$(elapsed "$t2")

echo "run-all: phase 1 (normal build, -Werror, ctest $*): $r1 in $d1"
echo "run-all: phase 2 (ASan and UBSan build): $r2 in $d2"
echo "run-all: total $(elapsed "$start")"
[ $r1 = passed ] && [ $r2 = passed ]
