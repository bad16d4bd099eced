"""asyncpg: search_path in server_settings; every query goes through asyncpg's
per-connection statement cache (server-side prepared statements), kept across
`ratchet complete` — in autocommit and inside transactions."""

import asyncio
import re

import asyncpg

import common
from common import check, eq, step


def dollar(sql):
    """`%s` placeholders of the shared statements as asyncpg's `$1`, `$2`, …"""
    n = iter(range(1, 100))
    return re.sub(r"%s", lambda _: f"${next(n)}", sql)


async def connect(dsn, schema):
    # server_settings are sent in the startup packet: the connection lives in that
    # version from its first statement. statement_cache_size (default 100) is asyncpg's
    # cache of prepared statements; keep it on (behind PgBouncer in transaction mode,
    # 0 — see docs/integration.md).
    return await asyncpg.connect(
        dsn, server_settings={"search_path": schema}, statement_cache_size=100
    )


def bridge(loop, conn):
    """The shared workload is synchronous: run each statement on the event loop."""

    def q(sql, params):
        rows = loop.run_until_complete(conn.fetch(dollar(sql), *params))
        return [tuple(r) for r in rows]

    return q


def run(a):
    loop = asyncio.new_event_loop()
    old = loop.run_until_complete(connect(a.dsn, a.old))
    new = loop.run_until_complete(connect(a.dsn, a.new))
    count = "SELECT count(*) FROM pg_prepared_statements"
    common.phase0(bridge(loop, old), bridge(loop, new), "asyncpg")
    common.handover(a, 1)  # run.sh: ratchet backfill
    common.phase1(bridge(loop, old), bridge(loop, new), "asyncpg")
    n_old = loop.run_until_complete(old.fetchval(count))
    n_new = loop.run_until_complete(new.fetchval(count))
    check(n_old >= 4 and n_new >= 4, "statements are prepared server-side")
    step(f"server-side prepared: {n_old} on the old connection, {n_new} on the new")

    async def in_transaction():
        # asyncpg raises InvalidCachedStatementError inside a transaction when a
        # cached statement's result type changed; ratchet never changes a live view.
        async with new.transaction():
            for i in range(1, 4):
                await new.fetchrow(dollar(common.NEW_SELECT), i)

    loop.run_until_complete(in_transaction())

    async def prepare():
        # Connection.prepare() outside a transaction leaves the connection inside an
        # open implicit transaction, holding ACCESS SHARE on the view and the table,
        # until its next statement: an idle connection in that state makes `ratchet
        # complete` (or any DDL) time out and give up. Prepare inside a transaction.
        async with new.transaction():
            return await new.prepare(dollar(common.NEW_SELECT))

    explicit = loop.run_until_complete(prepare())

    common.handover(a, 2)  # run.sh: ratchet validate, ratchet complete

    common.phase2(bridge(loop, new), "asyncpg")
    loop.run_until_complete(in_transaction())
    eq(loop.run_until_complete(explicit.fetchrow(1))[0], "seed 1", "explicitly prepared")
    step("old version after complete: its schema is gone, its statements fail cleanly")
    try:
        loop.run_until_complete(old.fetchrow(dollar(common.OLD_SELECT), 1))
        raise AssertionError("the old version still answered after complete")
    except asyncpg.exceptions.UndefinedTableError:
        pass

    async def pooled():
        # A pool passes server_settings to every connection it opens.
        pool = await asyncpg.create_pool(
            a.dsn, server_settings={"search_path": a.new}, min_size=1, max_size=2
        )
        try:
            for i in range(1, common.REPEAT + 1):
                eq(await pool.fetchval(dollar(common.NEW_SELECT), i), f"seed {i}", "pool")
        finally:
            await pool.close()

    loop.run_until_complete(pooled())
    fresh = loop.run_until_complete(connect(a.dsn, a.new))
    eq(loop.run_until_complete(fresh.fetchval(dollar(common.NEW_SELECT), 1)), "seed 1", "fresh")
    for c in (old, new, fresh):
        loop.run_until_complete(c.close())


common.main(run)
