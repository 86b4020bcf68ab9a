#!/usr/bin/env bash
# check-deps.sh: everything the build and the tests use comes from a Debian
# package that deploy/install-deps.sh installs.
#
#   tests/check-deps.sh [--list=FILE] [--build=DIR] [-v]
#
# What is checked, each resolved to a file and that file to its Debian
# package with dpkg-query -S (the path, every link on the way to its real
# path, each also in its /usr-merged or unmerged spelling):
#   - every pkg-config module of CMakeLists.txt's pkg_check_modules (its
#     .pc file, from pkg-config --path);
#   - every find_library and find_path of CMakeLists.txt (the file CMake
#     would find: HINTS first, then the compiler's search directories);
#   - every file CMakeLists.txt takes from a cache PATH variable with an
#     absolute default (the llhttp sources in /usr/share/llhttp, say);
#   - the programs the build and the tests run (PROGRAMS below, found on
#     PATH) and the runtime files of the sanitizer and fuzz builds;
#   - with --build=DIR, also what DIR/CMakeCache.txt resolved: every
#     FILEPATH entry (compiler, make, python3, clang, libraries) and the
#     headers in the find_path directories.
# A package "is installed by deploy/install-deps.sh" when it is on the list
# (deploy/install-deps.sh --list; --list=FILE or SXPOOL_DEPS_LIST=FILE give
# another, one package a line) or is what one of those depends on (Depends
# and Pre-Depends, followed as installed on this machine; apt-get installs
# no Recommends there).
#
# Prints one line per problem, e.g.
#   check-deps: pkg-config module bdw-gc (/usr/lib/x86_64-linux-gnu/pkgconfig/bdw-gc.pc)
#   comes from libgc-dev, which deploy/install-deps.sh does not install
# and exits 1 if there is one; -v also prints each file and its package.
set -u
export LC_ALL=C

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
list_file=${SXPOOL_DEPS_LIST:-}
build=
verbose=no
for arg in "$@"; do
    case "$arg" in
        --list=*) list_file=${arg#--list=} ;;
        --build=*) build=${arg#--build=} ;;
        -v | --verbose) verbose=yes ;;
        -h | --help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-deps: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

# What the build and the tests run: CMake and its generator, the compiler,
# the test runners and the tools of the test scripts (tests/*.sh, this one
# included, the conformance runner, tests/fuzz/run_fuzz.sh), clang for the
# fuzz test, and as and ld, which the JIT's compile thread runs at run time to
# make native code from what libgccjit writes; nm (binutils, as as and ld),
# which integration/test_jit reads the code cache's objects with; readelf
# (binutils), which needed-test.sh reads the binaries' NEEDED entries with;
# mdb_stat (lmdb-utils), which the chaos test runs on the data directory;
# haproxy, which integration/test_haproxy runs in front of two servers (in
# /usr/sbin, searched even when PATH leaves it out, as the test does);
# valgrind, which unit/memcheck runs the unit tests under; chromium, which
# integration/test_blog_screenshot runs headless; PostgreSQL 15's initdb,
# postgres, pg_isready and psql (in /usr/lib/postgresql/15/bin, searched as
# integration/pgserver.py runs them) and setpriv, which runs them as nobody
# when the tests run as root.
PROGRAMS="cmake ctest make cc pkg-config python3 bash sh clang as ld nm timeout mktemp cmp diff
          sed grep awk od find xargs head tail sort paste tr basename dirname nproc readlink
          realpath tee dpkg-query readelf mdb_stat haproxy valgrind chromium initdb postgres
          pg_isready psql setpriv"
PATH="$PATH:/usr/sbin:/usr/lib/postgresql/15/bin"

fail=0
problem() {
    echo "check-deps: $*"
    fail=1
}

# ---- the packages deploy/install-deps.sh installs ----
if [ -n "$list_file" ]; then
    listed=$(grep -v '^[[:space:]]*\(#\|$\)' "$list_file") || { problem "cannot read $list_file"; exit 1; }
    list_name=$list_file
else
    listed=$("$src/deploy/install-deps.sh" --list) || { problem "deploy/install-deps.sh --list failed"; exit 1; }
    list_name=deploy/install-deps.sh
fi
if ! command -v dpkg-query >/dev/null; then
    problem "dpkg-query not found: this check needs Debian's dpkg"
    exit 1
fi

# The closure of the list over Depends and Pre-Depends, as installed:
# "PACKAGE VIA" lines (VIA: the listed package it was reached from). An
# alternative (a | b) or a virtual package counts through every installed
# package that satisfies it.
closure=$(
    {
        printf '%s\n' $listed | sed 's/^/L\t/'
        dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Provides}\t${Pre-Depends}, ${Depends}\n' |
            awk -F'\t' '$1 ~ /^ii/' | sed 's/^[^\t]*\t/P\t/'
    } | awk -F'\t' '
        function names(s, out,   n, i, parts, a) {
            n = split(s, parts, /[,|]/)
            for (i = 1; i <= n; i++) {
                a = parts[i]
                sub(/\(.*\)/, "", a); gsub(/[ \t]/, "", a); sub(/:.*/, "", a)
                if (a != "") out[a] = 1
            }
        }
        $1 == "L" { want[++nw] = $2; next }
        {
            installed[$2] = 1
            deps[$2] = $4
            delete pv; names($3, pv)
            for (v in pv) providers[v] = providers[v] " " $2
        }
        END {
            for (i = 1; i <= nw; i++) {
                p = want[i]
                if (!(p in installed)) { print "MISSING\t" p; continue }
                if (!(p in via)) { via[p] = p; queue[++qn] = p }
            }
            for (qi = 1; qi <= qn; qi++) {
                p = queue[qi]
                delete d; names(deps[p], d)
                for (q in d) {
                    cands = (q in installed) ? q : ""
                    if (q in providers) cands = cands providers[q]
                    nc = split(cands, c, " ")
                    for (k = 1; k <= nc; k++)
                        if (c[k] != "" && !(c[k] in via)) { via[c[k]] = via[p]; queue[++qn] = c[k] }
                }
            }
            for (p in via) print p "\t" via[p]
        }')
declare -A via
while IFS=$'\t' read -r pkg root; do
    if [ "$pkg" = MISSING ]; then
        problem "$root is on the list of $list_name but is not installed (run deploy/install-deps.sh)"
    else
        via[$pkg]=$root
    fi
done <<<"$closure"

# ---- what to check: "KIND<TAB>NAME<TAB>PATH" lines ----
items=()
add() { items+=("$1"$'\t'"$2"$'\t'"$3"); }

multiarch=$(cc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
# CMakeLists.txt without comments, on one line; ${CMAKE_LIBRARY_ARCHITECTURE}
# as CMake sets it
cmake_text=$(sed 's/#.*//' "$src/CMakeLists.txt" | tr '\n' ' ' |
    sed "s/\${CMAKE_LIBRARY_ARCHITECTURE}/$multiarch/g")
calls() { grep -o "$1 *([^)]*)" <<<"$cmake_text" | sed "s/^$1 *(//; s/)\$//"; }
keyword() {
    case "$1" in
        NAMES | HINTS | PATHS | PATH_SUFFIXES | DOC | REQUIRED | NO_DEFAULT_PATH | NAMES_PER_DIR | \
            NO_CACHE | QUIET | IMPORTED_TARGET | GLOBAL | NO_CMAKE_PATH | NO_CMAKE_ENVIRONMENT_PATH | \
            NO_SYSTEM_ENVIRONMENT_PATH | NO_CMAKE_SYSTEM_PATH | REGISTRY_VIEW | VALIDATOR) return 0 ;;
    esac
    return 1
}
# find_X(VAR name | NAMES n... [HINTS|PATHS d...] ...): sets NAMES and HINTS
parse_find() {
    local mode=names w first=yes
    NAMES=() HINTS=()
    for w in $1; do
        if [ $first = yes ]; then first=no; FIND_VAR=$w; continue; fi
        case "$w" in
            NAMES) mode=names; continue ;;
            HINTS | PATHS) mode=hints; continue ;;
        esac
        if keyword "$w"; then mode=skip; continue; fi
        case $mode in
            names) NAMES+=("$w") ;;
            hints) HINTS+=("$w") ;;
        esac
    done
}

# pkg-config modules
if command -v pkg-config >/dev/null; then
    while read -r args; do
        first=yes
        for w in $args; do
            if [ $first = yes ]; then first=no; continue; fi
            keyword "$w" && continue
            m=${w%%[<>=]*}
            pc=$(pkg-config --path "$m" 2>/dev/null)
            if [ -n "$pc" ]; then
                add "pkg-config module" "$m" "$pc"
            else
                problem "pkg-config module $m is not installed: no package on the list of $list_name provides it" \
                    "(apt-file search /$m.pc names the package to add)"
            fi
        done
    done < <(calls pkg_check_modules)
fi

# find_library: HINTS, then where the compiler looks
declare -A find_path_header
while read -r args; do
    parse_find "$args"
    found=
    for n in "${NAMES[@]}"; do
        case "$n" in *.so* | *.a) files=("$n") ;; *) files=("lib$n.so" "lib$n.a") ;; esac
        for f in "${files[@]}"; do
            for d in "${HINTS[@]}"; do
                if [ -z "$found" ] && [ -e "$d/$f" ]; then found=$d/$f; fi
            done
            if [ -z "$found" ]; then
                p=$(cc -print-file-name="$f" 2>/dev/null)
                if [ "$p" != "$f" ] && [ -e "$p" ]; then found=$(realpath -s "$p"); fi
            fi
        done
    done
    if [ -n "$found" ]; then
        add "library" "${NAMES[0]} ($FIND_VAR)" "$found"
    else
        problem "library ${NAMES[*]} ($FIND_VAR) not found: no package on the list of $list_name provides it"
    fi
done < <(calls find_library)

# find_path: HINTS, then the usual include directories
while read -r args; do
    parse_find "$args"
    found=
    for d in "${HINTS[@]}" /usr/local/include "/usr/include/$multiarch" /usr/include; do
        if [ -z "$found" ] && [ -e "$d/${NAMES[0]}" ]; then found=$d/${NAMES[0]}; fi
    done
    find_path_header[$FIND_VAR]=${NAMES[0]}
    if [ -n "$found" ]; then
        add "header" "${NAMES[0]} ($FIND_VAR)" "$found"
    else
        problem "header ${NAMES[0]} ($FIND_VAR) not found: no package on the list of $list_name provides it"
    fi
done < <(calls find_path)

# set(VAR /absolute CACHE PATH ...): the files used as ${VAR}/FILE, or the
# directory itself when none is
declare -A cache_default
while read -r var value rest; do
    case "$value:$rest" in
        /*:CACHE\ PATH*) cache_default[$var]=$value ;;
    esac
done < <(calls set)
cache_files() { # VAR DIR: add ${VAR}/FILE as DIR/FILE
    local used
    used=$(grep -o "\${$1}/[^ )\"]*" <<<"$cmake_text" | sort -u | sed "s|^\${$1}/||")
    if [ -z "$used" ]; then
        add "directory" "$1" "$2"
    else
        for f in $used; do add "file" "$1/$f" "$2/$f"; done
    fi
}
for var in "${!cache_default[@]}"; do
    cache_files "$var" "${cache_default[$var]}"
done

# programs, on PATH
for p in $PROGRAMS; do
    if path=$(command -v "$p"); then
        add "program" "$p" "$path"
    else
        problem "program $p not found: no package on the list of $list_name provides it"
    fi
done

# run-time files: the sanitizer build's (gcc) and the fuzz test's (clang)
for f in libasan.so libubsan.so; do
    p=$(cc -print-file-name="$f" 2>/dev/null)
    [ "$p" != "$f" ] && [ -e "$p" ] && add "runtime" "$f" "$p" || problem "runtime $f of cc not found"
done
if command -v clang >/dev/null; then
    f=libclang_rt.fuzzer-x86_64.a
    p=$(clang -print-file-name="$f" 2>/dev/null)
    [ "$p" != "$f" ] && [ -e "$p" ] && add "runtime" "$f" "$p" || problem "runtime $f of clang not found"
fi

# what a configured build resolved
if [ -n "$build" ]; then
    cache=$build/CMakeCache.txt
    if [ ! -f "$cache" ]; then
        problem "$cache does not exist (configure the build first)"
    else
        while IFS= read -r line; do
            var=${line%%:*}
            type=${line#*:}; type=${type%%=*}
            value=${line#*=}
            case "$type" in
                FILEPATH)
                    [ -e "$value" ] && add "cache entry" "$var of $build" "$value" ;;
                PATH)
                    if [ -n "${find_path_header[$var]:-}" ]; then
                        add "header" "${find_path_header[$var]} ($var of $build)" \
                            "$value/${find_path_header[$var]}"
                    elif [ -n "${cache_default[$var]:-}" ]; then
                        cache_files "$var" "$value"
                    fi ;;
            esac
        done < <(grep -E '^[A-Za-z_0-9]+:(FILEPATH|PATH)=/' "$cache")
    fi
fi

# ---- which package each file comes from ----
# Every spelling of every path on the way from the name to the real file.
spellings() {
    local p=$1 n=0 t
    while :; do
        printf '%s\n' "$p"
        case "$p" in
            /usr/bin/* | /usr/sbin/* | /usr/lib/* | /usr/lib64/*) printf '%s\n' "${p#/usr}" ;;
            /bin/* | /sbin/* | /lib/* | /lib64/*) printf '%s\n' "/usr$p" ;;
        esac
        [ -L "$p" ] && [ $n -lt 40 ] || break
        t=$(readlink "$p")
        case "$t" in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
        p=$(realpath -ms "$p")
        n=$((n + 1))
    done
    t=$(readlink -f "$1")
    [ "$t" = "$p" ] || spellings "$t"
}
declare -A owners
all_paths=()
for it in "${items[@]}"; do
    IFS=$'\t' read -r kind name path <<<"$it"
    while IFS= read -r s; do all_paths+=("$s"); done < <(spellings "$path")
done
if [ ${#all_paths[@]} -gt 0 ]; then
    while IFS= read -r line; do
        case "$line" in diversion* | *"no path found"*) continue ;; esac
        pkgs=${line%%: /*}
        path=/${line#*: /}
        pkgs=$(sed 's/:[a-z0-9]*//g; s/,/ /g' <<<"$pkgs")
        owners[$path]="${owners[$path]:-} $pkgs"
    done < <(printf '%s\n' "${all_paths[@]}" | sort -u | xargs -d '\n' dpkg-query -S 2>/dev/null)
fi

checked=0
for it in "${items[@]}"; do
    IFS=$'\t' read -r kind name path <<<"$it"
    found=() ok=
    while IFS= read -r s; do
        for pkg in ${owners[$s]:-}; do
            found+=("$pkg")
            if [ -z "$ok" ] && [ -n "${via[$pkg]:-}" ]; then ok=$pkg; fi
        done
    done < <(spellings "$path")
    checked=$((checked + 1))
    real=$(readlink -f "$path")
    shown=$path
    [ "$real" = "$path" ] || shown="$path -> $real"
    if [ -n "$ok" ]; then
        if [ $verbose = yes ]; then
            if [ "${via[$ok]}" = "$ok" ]; then how=listed; else how="via ${via[$ok]}"; fi
            echo "check-deps: $kind $name ($shown): $ok ($how)"
        fi
    elif [ ${#found[@]} -eq 0 ]; then
        problem "$kind $name ($shown) belongs to no Debian package; use one that $list_name installs"
    else
        pkgs=$(printf '%s\n' "${found[@]}" | sort -u | paste -sd, - | sed 's/,/, /g')
        problem "$kind $name ($shown) comes from $pkgs, which $list_name does not install"
    fi
done

if [ $fail -eq 0 ]; then
    echo "check-deps: $checked files checked; each comes from a package that $list_name installs"
fi
exit $fail
