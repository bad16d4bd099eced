"""psycopg2 with a connection pool: one pool per version, search_path in the pool's
connection options (so every pooled connection has it from the start, and a
connection is never handed from one version to the other), explicit PREPARE/EXECUTE
for server-side prepared statements."""

from psycopg2 import errors, pool

import common
from common import check, eq, step


def make_pool(dsn, schema):
    # Extra keyword arguments go to every connect() the pool makes.
    return pool.ThreadedConnectionPool(1, 4, dsn, options=f"-c search_path={schema}")


def querier(p):
    """Each statement on a connection checked out of the pool, committed, returned."""

    def q(sql, params):
        conn = p.getconn()
        try:
            with conn, conn.cursor() as cur:  # `with conn`: commit, or roll back
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            p.putconn(conn)

    return q


def run(a):
    old_pool = make_pool(a.dsn, a.old)
    new_pool = make_pool(a.dsn, a.new)
    common.phase0(querier(old_pool), querier(new_pool), "psycopg2")
    common.handover(a, 1)  # run.sh: ratchet backfill
    common.phase1(querier(old_pool), querier(new_pool), "psycopg2")

    # psycopg2 has no automatic server-side prepares: PREPARE/EXECUTE by hand on a
    # long-lived connection (a prepared statement belongs to one connection).
    held = new_pool.getconn()
    held.autocommit = True
    cur = held.cursor()
    cur.execute("PREPARE by_id (bigint) AS " + common.NEW_SELECT.replace("%s", "$1"))
    for i in range(1, common.REPEAT + 1):
        cur.execute("EXECUTE by_id (%s)", (i,))
        eq(cur.fetchone()[1], common.cents(i), "EXECUTE before complete")
    old_held = old_pool.getconn()
    old_held.autocommit = True

    common.handover(a, 2)  # run.sh: ratchet validate, ratchet complete

    common.phase2(querier(new_pool), "psycopg2")
    for i in range(1, common.REPEAT + 1):
        cur.execute("EXECUTE by_id (%s)", (i,))
        row = cur.fetchone()
        check(row is not None and row[0] == f"seed {i}", f"EXECUTE after complete: {row}")
    step("the statement prepared before complete runs after it, same connection")
    step("old version after complete: its schema is gone, its statements fail cleanly")
    try:
        with old_held.cursor() as c:
            c.execute(common.OLD_SELECT, (1,))
        raise AssertionError("the old version still answered after complete")
    except errors.UndefinedTable:
        pass
    new_pool.putconn(held)
    old_pool.putconn(old_held)
    old_pool.closeall()
    new_pool.closeall()


common.main(run)
