#!/usr/bin/env bash
# Install what ratchet's build and tests need, and only what is missing:
#  - PostgreSQL server binaries (initdb, pg_ctl) for the throwaway clusters;
#  - libclang, which the pg_query crate's build needs.
# Installing a package that is already there could upgrade PostgreSQL under a running
# server, so each is checked first. Without root, the exact command is printed instead.
set -euo pipefail

missing=()
have_pg_server() {
    [ -n "${RATCHET_PG_BIN:-}" ] && [ -x "$RATCHET_PG_BIN/initdb" ] && return 0
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
    return 1
}
# Only libclang itself counts (libclang.so, libclang-14.so.1, ...): libclang-cpp, which
# other packages pull in, is a different library and bindgen cannot load it.
have_libclang() {
    [ -n "${LIBCLANG_PATH:-}" ] && return 0
    local f
    for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
             /usr/lib/*/libclang.so* /usr/lib/*/libclang-[0-9]*.so*; do
        [ -e "$f" ] && return 0
    done
    return 1
}
have_pg_server || missing+=(postgresql)
have_libclang || missing+=(libclang-dev)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ratchet needs: ${missing[*]}. Install them with:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package starts a cluster of its own; ratchet does not use it.
if command -v pg_ctlcluster >/dev/null 2>&1; then
    for v in /etc/postgresql/*/main; do
        [ -d "$v" ] || continue
        ver=$(basename "$(dirname "$v")")
        pg_ctlcluster "$ver" main stop >/dev/null 2>&1 || true
    done
fi
