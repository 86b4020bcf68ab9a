#!/usr/bin/env bash
# bench/http/run.sh: HTTP throughput and latency of sxpool against nginx +
# Lua, Node's cluster module and gunicorn, each with 2 worker processes on
# 127.0.0.1, driven by wrk. See bench/README.md ("HTTP benchmarks").
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: bench/http/run.sh [OPTIONS]

Starts each server in turn on 127.0.0.1 (a free port, 2 workers), checks
that all of them answer /, /fib?n=20 and /rows with the same bytes, then
drives each workload with wrk RUNS times and prints one table.

options:
  --duration=D      wrk duration of each run (default 10s; wrk syntax: 2s, 1m)
  --connections=C   wrk connections (default 64; one wrk thread)
  --runs=N          runs per workload and server (default 3; the median is shown)
  --servers=LIST    comma-separated subset of
                    nginx-lua,node-cluster,gunicorn,sxpool-jit,sxpool-ahead,sxpool-vm,sxpool-cek
                    (default: all, in that order)
  --sxpool=PATH     the sxpool binary (default build/sxpool)
  --out=DIR         where the raw wrk outputs and server logs go
                    (default: a new temporary directory)
  --chaos           instead of the table: drive /fib?n=20 for one run while a
                    random worker process of the server is killed with
                    SIGKILL every 500 ms, and count the failed requests
  --no-install      do not run bench/install-deps.sh (the tools must be there)
  --help            this text

Servers:
  nginx-lua      nginx, worker_processes 2, content_by_lua_block, lua_shared_dict store
  node-cluster   node, cluster module, 2 workers, a Map as the store
  gunicorn       gunicorn, sync worker class, 2 workers, a dict as the store
  sxpool-jit     sxpool --workers=2 --cek-workers=1 (JIT workers, the
                 defaults: threshold 1000, --inflight=4; 1 is the smallest CEK
                 pool sxpool accepts, and it serves nothing while a JIT
                 worker is up)
  sxpool-ahead   sxpool-jit with --inflight=8 (the largest): each JIT worker
                 holds up to 8 requests, so it seldom waits for one
  sxpool-vm      sxpool --workers=2 --cek-workers=1 --jit-exclude='*': no
                 native code, the bytecode VM only
  sxpool-cek     sxpool --workers=0 --cek-workers=2: CEK workers only (the
                 reference evaluator serves everything)
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
apps=$here/apps
helper=$here/helper.py

duration=10s
connections=64
runs=3
servers=nginx-lua,node-cluster,gunicorn,sxpool-jit,sxpool-ahead,sxpool-vm,sxpool-cek
sxpool=$root/build/sxpool
out=
chaos=0
install=1
all_servers=" nginx-lua node-cluster gunicorn sxpool-jit sxpool-ahead sxpool-vm sxpool-cek "

die() { echo "bench/http: $*" >&2; exit 1; }
note() { echo "bench/http: $*" >&2; }

for a in "$@"; do
    case "$a" in
        --duration=*) duration=${a#*=} ;;
        --connections=*) connections=${a#*=} ;;
        --runs=*) runs=${a#*=} ;;
        --servers=*) servers=${a#*=} ;;
        --sxpool=*) sxpool=${a#*=} ;;
        --out=*) out=${a#*=} ;;
        --chaos) chaos=1 ;;
        --no-install) install=0 ;;
        --help|-h) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $a" ;;
    esac
done

# The duration in whole seconds, to bound every wrk run from outside too.
case "$duration" in
    *[!0-9]*[smh]|*[!0-9smh]*|'') die "--duration: expected a number with an optional s, m or h suffix, got '$duration'" ;;
esac
case "$duration" in
    *m) dur_s=$(( ${duration%m} * 60 )) ;;
    *h) dur_s=$(( ${duration%h} * 3600 )) ;;
    *s) dur_s=${duration%s} ;;
    *) dur_s=$duration ;;
esac
[[ "$dur_s" -ge 1 ]] || die "--duration: at least 1s"
[[ "$connections" =~ ^[1-9][0-9]*$ ]] || die "--connections: expected a positive number, got '$connections'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs: expected a positive number, got '$runs'"
IFS=, read -r -a server_list <<<"$servers"
[[ ${#server_list[@]} -ge 1 ]] || die "--servers: empty list"
for s in "${server_list[@]}"; do
    [[ "$all_servers" == *" $s "* ]] || die "--servers: unknown server '$s'"
done

# 1. The tools. bench/install-deps.sh installs what is missing and never
# removes a package (apt-get --no-remove).
if [[ $install == 1 ]]; then
    "$root/bench/install-deps.sh" >&2 || die "bench/install-deps.sh failed"
fi
for tool in wrk nginx node gunicorn python3 setsid pgrep timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed (bench/install-deps.sh installs it)"
done
[[ -x "$sxpool" ]] || die "no sxpool binary at $sxpool (build it, or give --sxpool=PATH)"
"$sxpool" --version >/dev/null 2>&1 || die "$sxpool does not run"
find_module() {
    local d
    for d in /usr/lib/nginx/modules /usr/share/nginx/modules; do
        [[ -f "$d/$1" ]] && { echo "$d/$1"; return 0; }
    done
    return 1
}
ndk_module=$(find_module ndk_http_module.so) || die "nginx's ndk_http_module.so is missing (package libnginx-mod-http-ndk)"
lua_module=$(find_module ngx_http_lua_module.so) || die "nginx's ngx_http_lua_module.so is missing (package libnginx-mod-http-lua)"

if [[ -z "$out" ]]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/bench-http.XXXXXX")
else
    mkdir -p "$out"
fi
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-http-run.XXXXXX")
# A copy of the binary, so that a rebuild during the run changes nothing.
cp "$sxpool" "$work/sxpool"
sxpool_bin=$work/sxpool

# The server running now: its pid (also its process group: setsid) and port.
srv_pid=
srv_port=

cleanup() {
    if [[ -n "$srv_pid" ]]; then
        kill -KILL -- "-$srv_pid" 2>/dev/null || true
        wait "$srv_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME: starts it in its own session and process group and
# waits (at most 30 s) until it answers.
start_server() {
    local name=$1 dir=$work/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    srv_port=$(python3 "$helper" port)
    case "$name" in
        nginx-lua)
            mkdir -p "$dir/logs"
            sed -e "s|@NDK_MODULE@|$ndk_module|" -e "s|@LUA_MODULE@|$lua_module|" \
                -e "s|@TMP@|$dir|g" -e "s|@APPS@|$apps|" -e "s|@PORT@|$srv_port|" \
                "$apps/nginx.conf" >"$dir/nginx.conf"
            setsid nginx -p "$dir" -c "$dir/nginx.conf" -e stderr -g 'daemon off;' \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
        node-cluster)
            HOST=127.0.0.1 PORT=$srv_port WORKERS=2 setsid node "$apps/node_app.js" \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
        gunicorn)
            setsid gunicorn --workers=2 --worker-class=sync --bind="127.0.0.1:$srv_port" \
                --chdir="$apps" --worker-tmp-dir="$dir" --log-level=warning wsgi_app:app \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
        sxpool-jit)
            setsid "$sxpool_bin" --workers=2 --cek-workers=1 --listen="127.0.0.1:$srv_port" \
                --app="$apps/sxpool" --data="$dir/data" \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
        sxpool-ahead)
            setsid "$sxpool_bin" --workers=2 --cek-workers=1 --inflight=8 \
                --listen="127.0.0.1:$srv_port" --app="$apps/sxpool" --data="$dir/data" \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
        sxpool-vm)
            setsid "$sxpool_bin" --workers=2 --cek-workers=1 --jit-exclude='*' \
                --listen="127.0.0.1:$srv_port" --app="$apps/sxpool" --data="$dir/data" \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
        sxpool-cek)
            setsid "$sxpool_bin" --workers=0 --cek-workers=2 \
                --listen="127.0.0.1:$srv_port" --app="$apps/sxpool" --data="$dir/data" \
                </dev/null >>"$out/$name.log" 2>&1 &
            ;;
    esac
    srv_pid=$!
    if ! python3 "$helper" wait "http://127.0.0.1:$srv_port/setup" 30 "$srv_pid"; then
        stop_server "$name" || true
        die "$name did not start (see $out/$name.log)"
    fi
    # The processes it runs its requests on: sxpool's workers, nginx's
    # workers, Node's cluster workers, gunicorn's workers (all children of
    # the process started). Wait until there are at least 2.
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(pgrep -P "$srv_pid" | wc -l) -ge 2 ]] && break
        sleep 0.1
    done
    [[ $(pgrep -P "$srv_pid" | wc -l) -ge 2 ]] || die "$name: fewer than 2 worker processes"
}

# stop_server NAME: SIGTERM to the process started, then (after 10 s at
# most) SIGKILL to its whole process group; fails if any process is left.
stop_server() {
    local name=$1 i
    [[ -n "$srv_pid" ]] || return 0
    kill -TERM "$srv_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pgrep -g "$srv_pid" >/dev/null || break
        sleep 0.1
    done
    if pgrep -g "$srv_pid" >/dev/null; then
        note "$name: still running 10 s after SIGTERM; SIGKILL to its process group"
        kill -KILL -- "-$srv_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            pgrep -g "$srv_pid" >/dev/null || break
            sleep 0.1
        done
    fi
    wait "$srv_pid" 2>/dev/null || true
    if pgrep -g "$srv_pid" >/dev/null; then
        pgrep -a -g "$srv_pid" >&2 || true
        die "$name: processes of group $srv_pid are left running"
    fi
    srv_pid=
}

# run_wrk PATH FILE: one wrk run, bounded from outside as well.
run_wrk() {
    timeout --kill-after=5 $((dur_s + 30)) \
        wrk -t1 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$srv_port$1" >"$2" 2>&1
}

workloads=(hello fib rows)
declare -A path=([hello]=/ [fib]='/fib?n=20' [rows]=/rows)

# 2. The check: every server answers the three paths with the same bytes
# (the first server's answers are the reference).
note "output in $out"
ref=
for s in "${server_list[@]}"; do
    start_server "$s"
    python3 "$helper" get "http://127.0.0.1:$srv_port/setup" "$out/body.setup.$s" ||
        { stop_server "$s"; die "$s: /setup failed"; }
    for w in "${workloads[@]}"; do
        python3 "$helper" get "http://127.0.0.1:$srv_port${path[$w]}" "$out/body.$w.$s" ||
            { stop_server "$s"; die "$s: ${path[$w]} failed"; }
        if [[ -n "$ref" ]] && ! cmp -s "$out/body.$w.$ref" "$out/body.$w.$s"; then
            diff "$out/body.$w.$ref" "$out/body.$w.$s" >&2 || true
            stop_server "$s"
            die "$s answers ${path[$w]} differently from $ref (bodies in $out/body.$w.*)"
        fi
    done
    stop_server "$s"
    ref=${ref:-$s}
    note "$s: /, /fib?n=20 and /rows answered, the same bytes"
done

# 3. Chaos: one run of /fib?n=20 per server while a random worker process is
# killed every 500 ms.
if [[ $chaos == 1 ]]; then
    for s in "${server_list[@]}"; do
        start_server "$s"
        note "$s: chaos, /fib?n=20 for $duration, one worker killed every 500 ms"
        run_wrk '/fib?n=20' "$out/chaos.$s.txt" &
        wrk_pid=$!
        : >"$out/chaos.$s.kills"
        deadline=$((SECONDS + dur_s + 40))
        while kill -0 "$wrk_pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.5
            mapfile -t kids < <(pgrep -P "$srv_pid" || true)
            if [[ ${#kids[@]} -gt 0 ]]; then
                victim=${kids[RANDOM % ${#kids[@]}]}
                if kill -KILL "$victim" 2>/dev/null; then
                    echo "$(date +%s.%N) $victim" >>"$out/chaos.$s.kills"
                fi
            fi
        done
        wait "$wrk_pid" || note "$s: wrk failed (see $out/chaos.$s.txt)"
        stop_server "$s"
    done
    echo
    echo "chaos: wrk -t1 -c$connections -d$duration --latency, a random worker process SIGKILLed every 500 ms"
    echo
    python3 "$helper" chaos "$out" "$servers"
    exit $?
fi

# 4. The timed runs.
for s in "${server_list[@]}"; do
    start_server "$s"
    python3 "$helper" get "http://127.0.0.1:$srv_port/setup" "$work/setup" ||
        { stop_server "$s"; die "$s: /setup failed"; }
    for w in "${workloads[@]}"; do
        for ((n = 1; n <= runs; n++)); do
            note "$s: ${path[$w]} run $n of $runs ($duration)"
            run_wrk "${path[$w]}" "$out/$w.$s.$n.txt" ||
                note "$s: wrk failed on ${path[$w]} (see $out/$w.$s.$n.txt)"
        done
    done
    stop_server "$s"
done

echo
echo "wrk -t1 -c$connections -d$duration --latency, median of $runs runs; 2 workers each; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 "$helper" table "$out" "$(IFS=,; echo "${workloads[*]}")" "$servers" "$runs"
