#!/bin/sh
# memcheck.sh: runs each unit test binary under valgrind's memcheck; fails
# if one fails, or memcheck finds an error in it: an invalid read or
# write, a jump on an uninitialised value, a bad free, or a definite leak.
#
#   memcheck.sh SUPPRESSIONS BINARY...
#
# SUPPRESSIONS (tests/memcheck/valgrind.supp) lists what is not counted,
# each entry with its reason. Possible and indirect leaks are not errors
# (the collector's heap holds the only pointers to some malloc'd blocks, in
# memory memcheck does not scan). Children a test forks are checked too
# (a leak there changes their exit status, which the test checks); those it
# execs run without valgrind.
set -u
supp=$1
shift
if ! command -v valgrind >/dev/null; then
    echo "memcheck: valgrind not found (deploy/install-deps.sh installs it)"
    exit 1
fi
status=0
for bin in "$@"; do
    name=$(basename "$bin")
    start=$(date +%s)
    log=$(mktemp)
    valgrind --quiet --tool=memcheck --error-exitcode=99 --suppressions="$supp" \
        --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
        --track-origins=no --num-callers=30 "$bin" >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    if [ "$rc" -ne 0 ]; then
        echo "memcheck: $name: FAILED (exit status $rc) in $((end - start)) s:"
        cat "$log"
        status=1
    else
        echo "memcheck: $name: no errors ($((end - start)) s)"
    fi
    rm -f "$log"
done
exit $status
