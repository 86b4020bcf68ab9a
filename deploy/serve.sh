#!/bin/sh
# Installs the dependencies, builds sxpool and serves the bundled blog (examples/blog)
# on 127.0.0.1:8080 with its data in ./sxpool-data. Extra arguments go to sxpool.
set -eu
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# only the release binary: sxpool-test (the test-only fault switches) and
# the tests are not built
cmake --build build -j"$(nproc)" --target sxpool
exec ./build/sxpool --listen=127.0.0.1:8080 --app=examples/blog --data=./sxpool-data "$@"
