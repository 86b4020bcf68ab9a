#!/usr/bin/env bash
# check-deps-test.sh SRC_DIR: tests/check-deps.sh passes with the real list
# of deploy/install-deps.sh, and fails, naming the package, with lists that
# miss one: libgc-dev (the bdw-gc pkg-config module) and clang (a program
# the fuzz test runs).
set -u
src=$1
check=$src/tests/check-deps.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sx-check-deps.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
failed=0
passed=0

# the programs as Debian installs them, whatever PATH puts first (pyenv, ...)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

if out=$(bash "$check" 2>&1); then
    passed=$((passed + 1))
else
    echo "FAIL check-deps with the list of deploy/install-deps.sh:"
    echo "$out"
    failed=$((failed + 1))
fi

"$src/deploy/install-deps.sh" --list >"$tmp/full" || exit 2
# without PACKAGE the check must fail and name PACKAGE and WHAT
without() {
    local pkg=$1 what=$2 out status
    grep -vx "$pkg" "$tmp/full" >"$tmp/list"
    if cmp -s "$tmp/full" "$tmp/list"; then
        echo "FAIL $pkg is not on the list of deploy/install-deps.sh"
        failed=$((failed + 1))
        return
    fi
    out=$(SXPOOL_DEPS_LIST=$tmp/list bash "$check" 2>&1)
    status=$?
    if [ $status -ne 0 ] && grep -q "$what.* comes from .*\b$pkg\b.*, which $tmp/list does not install" <<<"$out"; then
        passed=$((passed + 1))
    else
        echo "FAIL check-deps without $pkg: exit status $status, expected 1 and a line naming $what and $pkg:"
        echo "$out"
        failed=$((failed + 1))
    fi
}
without libgc-dev "pkg-config module bdw-gc (/[^ ]*/bdw-gc.pc)"
without clang "program clang "

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
