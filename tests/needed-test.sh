#!/usr/bin/env bash
# needed-test.sh REGEX BINARY...: fails when a BINARY names a shared library
# matching REGEX (grep -E, on the soname) among its ELF NEEDED entries, the
# libraries the dynamic loader maps before main. Those sxpool loads only
# when it needs them (dlopen) must not be there: each costs every process
# its loading at start (libpq with its dependencies: ~10 ms; libgccjit ~11 ms).
#
# A binary that cannot be read, or whose NEEDED entries include no libc
# (readelf printing something else than expected), fails too: the check
# cannot pass by reading nothing.
set -u
export LC_ALL=C

if [ $# -lt 2 ]; then
    echo "usage: $0 REGEX BINARY..." >&2
    exit 2
fi
regex=$1
shift
failed=0
for bin in "$@"; do
    if ! dyn=$(readelf -d -W "$bin" 2>&1); then
        echo "FAIL $bin: readelf -d failed: $dyn"
        failed=1
        continue
    fi
    needed=$(sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]$/\1/p' <<<"$dyn")
    if ! grep -q '^libc\.so\.' <<<"$needed"; then
        echo "FAIL $bin: no libc.so among its NEEDED entries; readelf -d printed:"
        echo "$dyn"
        failed=1
        continue
    fi
    bad=$(grep -E "$regex" <<<"$needed")
    if [ -n "$bad" ]; then
        echo "FAIL $bin needs $(paste -sd, - <<<"$bad" | sed 's/,/, /g') at load time" \
            "(NEEDED entries: $(paste -sd' ' - <<<"$needed")); it must be loaded on first use"
        failed=1
    else
        echo "ok $bin: no NEEDED entry matches $regex ($(paste -sd' ' - <<<"$needed"))"
    fi
done
exit $failed
