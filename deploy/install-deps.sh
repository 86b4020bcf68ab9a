#!/bin/sh
# Installs the Debian 12 packages sxpool builds, runs and tests with.
# Idempotent: apt-get skips what is already installed.
set -eu
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config binutils \
    libuv1-dev libnng-dev liblmdb-dev libgccjit-12-dev node-llhttp \
    clang libclang-rt-14-dev \
    curl procps psmisc lmdb-utils \
    wrk hyperfine lua5.4 luajit python3 >/dev/null
