#!/bin/sh
# Installs the dependencies, builds sxpool (warnings are errors) and runs the
# whole test suite through ctest; then builds again with ASan and UBSan and
# runs the unit, conformance and integration tests on that build (with the
# VM's switch dispatch).
# Extra arguments go to the first ctest run (e.g. -L unit).
set -eu
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSXPOOL_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure --timeout 900 -j2 "$@")

# The sanitizer build also uses the VM's switch dispatch, so both dispatch
# builds are tested. Its C stack is smaller (vm/sx_api.c), too small for the
# native tier's 100,000-deep recursion tests, which the first run covers.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSXPOOL_WERROR=ON -DSXPOOL_SANITIZE=ON \
    -DSXPOOL_COMPUTED_GOTO=OFF >/dev/null
cmake --build build-asan -j"$jobs"
cd build-asan
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    exec ctest --output-on-failure --timeout 900 -j2 -L 'unit|conformance|integration' \
    -E 'conformance/jit|conformance/local-jit|integration/test_jit$'
