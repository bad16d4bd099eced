"""psycopg 3: one connection per version, search_path in the connection options,
server-side prepared statements (prepare_threshold) kept across `ratchet complete`."""

import psycopg
from psycopg import errors

import common
from common import check, eq, step


def connect(dsn, schema):
    # The version schema alone on search_path, set at connect time: every statement of
    # this connection, including the ones psycopg prepares on the server, resolves
    # `accounts` in that version. prepare_threshold=5 is psycopg's default: a query
    # executed 5 times is prepared server-side (PREPARE _pg3_N) and then only EXECUTEd.
    return psycopg.connect(
        dsn, options=f"-c search_path={schema}", prepare_threshold=5, autocommit=True
    )


def prepared(conn):
    return conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]


def run(a):
    old = connect(a.dsn, a.old)
    new = connect(a.dsn, a.new)
    eq(new.execute("SHOW search_path").fetchone()[0], a.new, "search_path")

    def q(conn):
        def run_one(sql, params):
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

        return run_one

    common.phase0(q(old), q(new), "psycopg3")
    common.handover(a, 1)  # run.sh: ratchet backfill
    common.phase1(q(old), q(new), "psycopg3")
    check(prepared(old) >= 4 and prepared(new) >= 4, "statements were prepared server-side")
    step(f"server-side prepared: {prepared(old)} on the old connection, {prepared(new)} on the new")

    # The same statements inside a transaction, as an application with autocommit off
    # would run them.
    with new.transaction():
        for i in range(1, 4):
            new.execute(common.NEW_SELECT, (i,)).fetchone()

    common.handover(a, 2)  # run.sh: ratchet validate, ratchet complete

    common.phase2(q(new), "psycopg3")
    with new.transaction():
        for i in range(1, 4):
            new.execute(common.NEW_SELECT, (i,)).fetchone()
    step("old version after complete: its schema is gone, its statements fail cleanly")
    try:
        old.execute(common.OLD_SELECT, (1,)).fetchone()
        raise AssertionError("the old version still answered after complete")
    except errors.UndefinedTable:
        pass
    fresh = connect(a.dsn, a.new)
    eq(fresh.execute(common.NEW_SELECT, (1,)).fetchone()[0], "seed 1", "a new connection")


common.main(run)
