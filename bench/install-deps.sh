#!/bin/sh
# Installs what the benchmarks need on top of deploy/install-deps.sh (which
# it runs first: the benchmarks build sxpool): the peers of bench/lang/run.sh
# and the tools that time them. tests/run-all.sh and deploy/serve.sh never
# run this script.
#
#   bench/install-deps.sh          install what is missing (root or sudo)
#   bench/install-deps.sh --list   print the list, one package a line
#
# Like deploy/install-deps.sh it never removes a package (apt-get install
# --no-remove): if one conflicts with something installed, it stops and
# says so. LuaJIT is Debian's luajit2 (the OpenResty branch, /usr/bin/luajit):
# it coexists with nginx's Lua module (libnginx-mod-http-lua), which the
# luajit package would make apt remove. Where luajit is installed already,
# its /usr/bin/luajit is used and luajit2 is not installed (they conflict);
# nginx's Lua module then cannot be installed either, and this script stops
# and says so (bench/http needs it).
#
#   hyperfine     times the runs (bench/lang/run.sh)
#   lua5.4        the reference peer of bench/lang
#   luajit2       LuaJIT, a peer of bench/lang
#   guile-3.0     Guile 3, a peer of bench/lang (the .scm programs)
#   chezscheme    Chez Scheme (/usr/bin/scheme), a native-code peer of
#                 bench/lang (the .scm programs, or their .ss variants)
#   python3       a peer of bench/lang, and the table of results
#   time          /usr/bin/time: maximum RSS in bench/jit/compile_cost.sh
#   nginx, libnginx-mod-http-lua
#                 nginx with its Lua module, a peer of bench/http
#   nodejs        Node (its cluster module), a peer of bench/http
#   gunicorn      a WSGI server (sync workers), a peer of bench/http
#   wrk           drives the servers of bench/http
set -eu
PACKAGES="
hyperfine
lua5.4
luajit2
guile-3.0
chezscheme
python3
time
nginx
libnginx-mod-http-lua
nodejs
gunicorn
wrk
"
if [ "${1:-}" = --list ]; then
    printf '%s\n' $PACKAGES
    exit 0
fi

"$(dirname "$0")/../deploy/install-deps.sh"

want=
for p in $PACKAGES; do
    if [ "$p" = luajit2 ] &&
        dpkg-query -W -f='${db:Status-Abbrev}' luajit 2>/dev/null | grep -q '^ii'; then
        echo "bench/install-deps: luajit is installed (its /usr/bin/luajit is used); luajit2 left out"
        continue
    fi
    want="$want $p"
done
# shellcheck disable=SC2086
exec "$(dirname "$0")/../deploy/apt-install.sh" bench/install-deps $want
