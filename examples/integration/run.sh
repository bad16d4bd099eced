#!/usr/bin/env bash
# Runs every recipe of docs/integration.md for real, against a throwaway PostgreSQL
# cluster, and prints one PASS/FAIL line per stack.
#
#   examples/integration/run.sh                 # every stack
#   examples/integration/run.sh asyncpg grants  # some of them
#
# For each stack, in a database of its own: an owner role (no superuser) runs ratchet,
# a DML-only application role runs the stack's script. Migration 01 is applied, 2,000
# rows are inserted, migration 02 (a rename and a type change, plus a new table) is
# started without its backfill. The script then runs in three phases on the same
# connections (see common.py), handing over to run.sh between them: the old version
# writes before the backfill; run.sh runs `ratchet backfill` and checks the deploy gate;
# both versions write and read each other, prepared statements included; run.sh runs
# `ratchet validate` and `ratchet complete`; the new version and its prepared statements
# keep working, the old one is gone. `grants` checks, with psql, the privileges a
# DML-only role needs and `ratchet grants`.
#
# Idempotent: the Python packages go into target/integration-venv, installed only when
# missing; the ratchet binary is built only when missing (RATCHET=path to use another);
# the cluster lives in a temporary directory and is removed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VENV=${INTEGRATION_VENV:-$root/target/integration-venv}
RATCHET=${RATCHET:-$root/target/release/ratchet}
ALL_STACKS="psycopg3 asyncpg psycopg2_pool sqlalchemy django grants"
STACKS=${*:-$ALL_STACKS}

log() { echo "== $*" >&2; }
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

# --- what the run needs, installed only when missing ---------------------------------
ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating the Python venv $VENV"
        "${PYTHON:-python3}" -m venv "$VENV"
    fi
    # pip requirement, then the modules that show it is installed
    local missing=() spec req mods
    for spec in "psycopg[binary]:psycopg,psycopg_binary" "asyncpg:asyncpg" \
                "psycopg2-binary:psycopg2" "SQLAlchemy:sqlalchemy" "Django:django"; do
        req=${spec%%:*}
        mods=${spec#*:}
        "$VENV/bin/python" -c "import ${mods}" 2>/dev/null || missing+=("$req")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} into $VENV"
        "$VENV/bin/python" -m pip install -q "${missing[@]}"
    fi
}

ensure_ratchet() {
    if [ ! -x "$RATCHET" ]; then
        log "building ratchet (cargo build --release -p ratchet)"
        (cd "$root" && cargo build --release -p ratchet)
    fi
}

# The server binaries, found as ratchet's own scratch clusters find them.
pg_bin() {
    if [ -n "${RATCHET_PG_BIN:-}" ]; then echo "$RATCHET_PG_BIN"; return; fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    command -v pg_config >/dev/null 2>&1 && pg_config --bindir
}

# --- the throwaway cluster -----------------------------------------------------------
PGBIN=""
CLUSTER=""
PORT=""
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_cluster() {
    if [ -n "$CLUSTER" ] && [ -d "$CLUSTER/data" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$CLUSTER/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [ -n "$CLUSTER" ] && rm -rf "$CLUSTER"
}
start_cluster() {
    PGBIN=$(pg_bin)
    if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
        "$root/scripts/ensure-deps.sh"
        PGBIN=$(pg_bin)
    fi
    CLUSTER=$(mktemp -d /tmp/ratchet-integration.XXXXXX)
    trap stop_cluster EXIT
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$CLUSTER"; fi
    as_pg "$PGBIN/initdb" -D "$CLUSTER/data" -U postgres --auth=trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$CLUSTER/initdb.log" 2>&1 || { cat "$CLUSTER/initdb.log" >&2; exit 2; }
    PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$PGBIN/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -k $CLUSTER -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { cat "$CLUSTER/server.log" >&2; exit 2; }
    log "scratch cluster on 127.0.0.1:$PORT ($("$PGBIN/postgres" --version))"
}

url() { echo "postgres://$1@127.0.0.1:$PORT/$2"; }
# psql as ROLE on DB, stop at the first error
sql() {
    local role=$1 db=$2
    shift 2
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$(url "$role" "$db")" "$@"
}

# Roles of the whole cluster: the owner runs ratchet (no superuser, no CREATEDB), the
# application role only reads and writes, the report role is added mid-migration.
make_roles() {
    sql postgres postgres -c "
        CREATE ROLE it_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
        CREATE ROLE it_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
        CREATE ROLE it_report LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;"
}

ratchet() { DATABASE_URL=$(url it_owner "$DB") "$RATCHET" "$@"; }
# The deploy gate of docs/integration.md: every start step of the active migration done
# (after `start --no-backfill`, the backfill is not).
start_done() {
    ratchet status --format json | "$VENV/bin/python" -c '
import json, sys
a = json.load(sys.stdin)["active"]
sys.exit(0 if a is None or all(s["done"] for s in a["steps"] if s["phase"] == "start") else 1)'
}
version_schema() {
    ratchet status --format json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["version_schema"])'
}

# A database set up as production would be: owned by the owner role, PUBLIC stripped
# of the public schema, the application role given USAGE on it and, through default
# privileges, DML on every table (and USAGE on every sequence) the owner creates.
# Migration 01 applied, 2,000 rows, migration 02 started without its backfill.
# Sets DB, OLD_VS, NEW_VS.
prepare_db() {
    DB=it_$1
    sql postgres postgres -c "CREATE DATABASE $DB OWNER it_owner"
    sql postgres "$DB" -c "
        REVOKE ALL ON SCHEMA public FROM PUBLIC;
        GRANT USAGE ON SCHEMA public TO it_app;"
    sql it_owner "$DB" -c "
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO it_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO it_app;"
    ratchet start "$here/migrations/01_accounts.yaml" --complete
    OLD_VS=$(version_schema)
    sql it_owner "$DB" -c "INSERT INTO accounts (name, amount)
                           SELECT 'seed ' || g, g FROM generate_series(1, 2000) g"
    # The new version schema is created by `ratchet backfill` (once its columns are
    # filled): take its name from the plan.
    NEW_VS=$(ratchet plan "$here/migrations/02_cents.yaml" --format json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["version_schema"])')
    ratchet start "$here/migrations/02_cents.yaml" --no-backfill
    echo "old version schema: $OLD_VS, new version schema: $NEW_VS"
}

# The read flag of 02_cents is switched on once the validation passed (the gate of
# `complete`, see docs/flags.md); the applications of these recipes read the new version
# schema as a whole, so the flag has nothing else to decide.
contract() {
    ratchet backfill
    ratchet validate
    ratchet flags set 02_cents.read_new on
    ratchet complete
}

# Wait for the script's ready file; fail when it exits first or takes over 5 minutes.
await_ready() {
    local file=$1 pid=$2 waited=0
    while [ ! -e "$file" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" || return $?
            echo "the script ended without reaching $(basename "$file")" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
        if [ "$waited" -ge 3000 ]; then kill "$pid"; return 1; fi
    done
}

# One stack: its script as the application role, in three phases (see common.py):
# before the backfill, between backfill and complete, after complete.
run_script() {
    local stack=$1 sync
    prepare_db "$stack"
    sync=$(mktemp -d "$CLUSTER/sync.XXXXXX")
    (cd "$here" && exec "$VENV/bin/python" -u "$here/${stack}_app.py" --dsn "$(url it_app "$DB")" \
        --old "$OLD_VS" --new "$NEW_VS" --sync "$sync") &
    local pid=$!
    await_ready "$sync/ready-1" "$pid"
    echo "-- phase 0 done (before the backfill); backfilling"
    if start_done; then echo "start reported done before the backfill" >&2; kill "$pid"; return 1; fi
    ratchet backfill || { kill "$pid"; return 1; }
    start_done || { echo "start not done after the backfill" >&2; kill "$pid"; return 1; }
    echo "-- start is done: the new version may be deployed"
    touch "$sync/go-1"
    await_ready "$sync/ready-2" "$pid"
    echo "-- phase 1 done (both versions); validating and completing"
    { ratchet validate && ratchet flags set 02_cents.read_new on && ratchet complete; } || { kill "$pid"; return 1; }
    touch "$sync/go-2"
    wait "$pid"
}

# The privileges a DML-only role needs, checked with psql: QUERY as ROLE must fail
# with an error containing TEXT.
expect_error() {
    local role=$1 text=$2 query=$3 out
    if out=$(sql "$role" "$DB" -c "$query" 2>&1); then
        echo "expected '$text' for $role: $query" >&2
        return 1
    fi
    case $out in
        *"$text"*) echo "failed as expected ($role, $text): $query" ;;
        *) echo "$out" >&2; return 1 ;;
    esac
}
expect_denied() { expect_error "$1" "permission denied" "$2"; }

run_grants() {
    prepare_db grants
    expect_error it_app "does not exist" "SELECT count(*) FROM $NEW_VS.accounts"
    echo "-- before the backfill the new version schema does not exist; backfilling"
    ratchet backfill
    echo "-- the application role works through both versions, and can do nothing else"
    sql it_app "$DB" -c "SET search_path TO $OLD_VS;
        INSERT INTO accounts (name, amount) VALUES ('grants old', 1.5);
        UPDATE accounts SET note = 'n' WHERE id = 1;
        DELETE FROM accounts WHERE name = 'grants old';"
    sql it_app "$DB" -c "SET search_path TO $NEW_VS;
        INSERT INTO accounts (full_name, amount_cents) VALUES ('grants new', 150);
        INSERT INTO tags (account_id, label) VALUES (1, 'created by migration 02');
        SELECT count(*) FROM tags;"
    expect_denied it_app "CREATE TABLE public.nope (x int)"
    expect_denied it_app "CREATE TABLE $NEW_VS.nope (x int)"
    expect_denied it_app "TRUNCATE public.accounts"
    echo "-- a role granted SELECT after start: the version schema has not got it yet"
    sql it_owner "$DB" -c "GRANT USAGE ON SCHEMA public TO it_report;
                           GRANT SELECT ON accounts TO it_report;"
    expect_denied it_report "SELECT count(*) FROM $NEW_VS.accounts"
    ratchet grants
    sql it_report "$DB" -c "SELECT count(*) FROM $NEW_VS.accounts"
    expect_denied it_report "UPDATE $NEW_VS.accounts SET note = 'x' WHERE id = 1"
    contract
    echo "-- after complete: an old instance with the old version schema alone fails cleanly"
    expect_error it_app "does not exist" "SET search_path TO $OLD_VS; SELECT name FROM accounts"
    echo "-- … but with '$OLD_VS, public' it falls through to the changed base table"
    expect_error it_app 'column "name" does not exist' \
        "SET search_path TO $OLD_VS, public; SELECT name FROM accounts WHERE id = 1"
    sql it_app "$DB" -c "SET search_path TO $OLD_VS, public; SELECT note FROM accounts WHERE id = 1"
    echo "-- after complete: the grants of the live version are kept"
    sql it_report "$DB" -c "SELECT count(*) FROM $NEW_VS.accounts"
    sql it_app "$DB" -c "SET search_path TO $NEW_VS;
        UPDATE accounts SET amount_cents = amount_cents + 1 WHERE id = 1;
        SELECT full_name, amount_cents FROM accounts WHERE id = 1;"
}

main() {
    ensure_venv
    ensure_ratchet
    start_cluster
    make_roles
    local results=() failed=0 stack logf t0 rc note
    for stack in $STACKS; do
        case " $ALL_STACKS " in *" $stack "*) ;; *) echo "unknown stack: $stack" >&2; exit 2 ;; esac
        logf="$CLUSTER/$stack.log"
        log "$stack"
        t0=$SECONDS
        rc=0
        if [ "$stack" = grants ]; then
            (run_grants) >"$logf" 2>&1 &
        else
            (run_script "$stack") >"$logf" 2>&1 &
        fi
        # Not `( … ) || rc=$?`: bash ignores set -e inside a list tested with ||.
        wait $! || rc=$?
        if [ "$rc" -eq 0 ]; then
            note=""
            results+=("PASS  $stack  $((SECONDS - t0))s $note")
        else
            failed=1
            results+=("FAIL  $stack  (exit $rc)")
            echo "---- $stack log ----" >&2
            cat "$logf" >&2
        fi
        if [ -n "${VERBOSE:-}" ]; then cat "$logf" >&2; fi
    done
    echo
    echo "integration recipes (PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), ratchet $("$RATCHET" --version | awk '{print $2}')):"
    printf '  %s\n' "${results[@]}"
    return "$failed"
}

main
