#!/bin/sh
# Installs the Debian packages given that are not installed yet, never
# removing one: if apt-get would have to remove a package to install them,
# it stops (--no-remove) and so does this, saying how to see the conflict.
#
#   deploy/apt-install.sh WHO PACKAGE...
#
# WHO names the calling script in messages. Used by deploy/install-deps.sh
# and bench/install-deps.sh.
set -eu
who=$1
shift
missing=
for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in ii*) ;; *) missing="$missing $p" ;; esac
done
[ -n "$missing" ] || exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
echo "$who: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if ! $SUDO apt-get install -y -qq --no-install-recommends --no-remove "$@" >/dev/null; then
    echo "$who: apt-get could not install these packages without removing one already" >&2
    echo "$who: installed; nothing was removed. Run" >&2
    echo "$who:   apt-get install --no-remove --no-install-recommends$missing" >&2
    echo "$who: to see the conflict." >&2
    exit 1
fi
