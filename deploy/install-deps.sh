#!/bin/sh
# Installs the Debian 12 packages sxpool builds, runs and tests with.
#
#   deploy/install-deps.sh          install what is missing (root or sudo)
#   deploy/install-deps.sh --list   print the list, one package a line
#
# Idempotent: when every package is installed already it does nothing (no
# apt-get at all). It never removes a package: if one of these conflicts
# with something on the machine, apt-get stops (--no-remove) and so does
# this script, naming the problem; nothing is removed.
# What only the benchmarks need (hyperfine, Lua, LuaJIT, Guile, ...) is in
# bench/install-deps.sh; tests/run-all.sh and deploy/serve.sh never install it.
#
# The list is also what tests/check-deps.sh holds the build and the tests
# to: every pkg-config module, library, header and program they use must
# come from one of these packages or from what they depend on. The
# essential tools the test scripts run (bash, sh, sed, grep, ...) are listed
# too, so that the list says everything. Keep one package per line.
set -eu
PACKAGES="
build-essential
cmake
pkg-config
binutils
libuv1-dev
libsystemd-dev
libnng-dev
liblmdb-dev
libpq-dev
libgccjit-12-dev
gcc-12
libgc-dev
nettle-dev
libseccomp-dev
node-llhttp
clang
libclang-rt-14-dev
python3
python3-prometheus-client
python3-html5lib
bash
dash
coreutils
diffutils
findutils
grep
sed
mawk
dpkg
lmdb-utils
postgresql-15
util-linux
haproxy
valgrind
chromium
"
if [ "${1:-}" = --list ]; then
    printf '%s\n' $PACKAGES
    exit 0
fi

# shellcheck disable=SC2086
exec "$(dirname "$0")/apt-install.sh" install-deps $PACKAGES
