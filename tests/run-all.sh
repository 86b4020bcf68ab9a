#!/bin/sh
# Installs the dependencies, builds sxpool (warnings are errors) and runs the
# whole test suite through ctest. Extra arguments go to ctest (e.g. -L unit).
set -eu
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSXPOOL_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
cd build
exec ctest --output-on-failure --timeout 900 -j2 "$@"
