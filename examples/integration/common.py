"""What every stack script shares: its arguments, the hand-over with run.sh, checks.

Each stack script runs as the DML-only application role and talks to two version
schemas of the same database:

- the OLD version (``--old``, e.g. ``public_01_accounts``): ``accounts(id, name, amount
  numeric(12,2), note)``;
- the NEW version (``--new``, e.g. ``public_02_cents``): ``accounts(id, full_name,
  amount_cents bigint, note)`` and ``tags(id, account_id, label)``.

It runs in three phases, on the same connections throughout, and hands over to run.sh
between them (it writes ``<sync>/ready-N`` and waits for ``<sync>/go-N``):

0. migration 02 is started without its backfill (``ratchet start --no-backfill``): the
   old version writes, rows not backfilled yet included; the new version reads only
   the rows the old one wrote (the triggers filled them). run.sh: ``ratchet backfill``.
1. both versions read and write, each reads what the other wrote, every statement
   repeated past the driver's prepare threshold. run.sh: ``ratchet validate``,
   ``ratchet complete``.
2. the new version's statements, prepared before ``complete``, keep working; the old
   version is gone (its statements fail with UndefinedTable).
"""

import argparse
import os
import sys
import time
from decimal import Decimal

SEEDED = 2000  # rows run.sh inserts before migration 02 starts (ids 1..2000)
REPEAT = 12  # executions of each statement: past every driver's prepare threshold


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True, help="libpq URL of the application role")
    p.add_argument("--old", required=True, help="the old version schema")
    p.add_argument("--new", required=True, help="the new version schema")
    p.add_argument("--sync", required=True, help="folder for the ready/go hand-over")
    return p.parse_args()


def step(msg):
    print(f"  - {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


def cents(amount):
    """What migration 02's `up` computes from an old-version amount."""
    return int(Decimal(amount) * 100)


def handover(a, n, timeout=300):
    """Phase `n` is done: tell run.sh, and wait until it says go (after `ratchet
    backfill` for n = 1, after `ratchet validate` and `ratchet complete` for n = 2)."""
    open(os.path.join(a.sync, f"ready-{n}"), "w").close()
    deadline = time.monotonic() + timeout
    go = os.path.join(a.sync, f"go-{n}")
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise TimeoutError("run.sh never said go")
        time.sleep(0.1)


def main(run):
    """Run `run(a)`; any exception fails the script with a non-zero exit."""
    a = args()
    try:
        run(a)
    except BaseException as e:  # noqa: BLE001 - report whatever broke, then fail
        import traceback

        traceback.print_exc()
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print("ok", flush=True)


# The same statements, run REPEAT times each, for the drivers that take plain SQL
# (psycopg 3, asyncpg, psycopg2). `old` and `new` are callables `q(sql, params) -> rows`
# on a connection whose search_path is the old or the new version schema; placeholders
# are `%s` (the asyncpg script turns them into `$1`, `$2`, …).

OLD_INSERT = "INSERT INTO accounts (name, amount) VALUES (%s, %s) RETURNING id"
OLD_SELECT = "SELECT name, amount, note FROM accounts WHERE id = %s"
OLD_UPDATE_NOTE = "UPDATE accounts SET note = %s WHERE id = %s"
OLD_UPDATE_AMOUNT = "UPDATE accounts SET amount = %s WHERE id = %s"
NEW_INSERT = "INSERT INTO accounts (full_name, amount_cents) VALUES (%s, %s) RETURNING id"
NEW_SELECT = "SELECT full_name, amount_cents, note FROM accounts WHERE id = %s"
NEW_UPDATE_CENTS = "UPDATE accounts SET amount_cents = amount_cents + %s WHERE id = %s RETURNING amount_cents"
NEW_TAG = "INSERT INTO tags (account_id, label) VALUES (%s, %s) RETURNING id"
NEW_COUNT = "SELECT count(*) FROM accounts"


# What the old version wrote before the backfill, checked through the new version once
# it exists (ratchet publishes the new version schema only when its columns are filled).
PENDING = []


def phase0(old, new, tag):
    """Before the backfill: the old version writes, also rows not backfilled yet. The new
    version schema does not exist yet; phase1 reads these rows through it."""
    step("old version inserts")
    for i in range(REPEAT):
        amount = Decimal(f"{i}.25")
        (rid,) = old(OLD_INSERT, (f"{tag} old {i}", amount))[0]
        PENDING.append((rid, 0, (f"{tag} old {i}", cents(amount)), "new reads old insert"))
    step("old version updates an unrelated column of rows not backfilled yet")
    for i in range(1, REPEAT + 1):
        old(OLD_UPDATE_NOTE, (f"{tag} note {i}", i))
        PENDING.append((i, 1, (cents(i), f"{tag} note {i}"), "new reads old update"))
    step("old version updates the migrated column of rows not backfilled yet")
    for i in range(101, 101 + REPEAT):
        old(OLD_UPDATE_AMOUNT, (Decimal("7.07"), i))
        PENDING.append((i, 2, 707, "new reads old amount update"))


def check_pending(new):
    """The old version's writes before the backfill, read through the new version."""
    step("the new version reads what the old one wrote before the backfill")
    for rid, kind, want, what in PENDING:
        row = new(NEW_SELECT, (rid,))[0]
        got = row[:2] if kind == 0 else row[1:] if kind == 1 else row[1]
        eq(got, want, what)


def phase1(old, new, tag):
    """After the backfill, before complete: both versions write, each reads the other."""
    check_pending(new)
    step("new version inserts; the old version reads them by the old names and type")
    for i in range(REPEAT):
        (rid,) = new(NEW_INSERT, (f"{tag} new {i}", 1000 + i))[0]
        name, amount, _ = old(OLD_SELECT, (rid,))[0]
        eq((name, Decimal(amount)), (f"{tag} new {i}", Decimal(1000 + i) / 100), "old reads new insert")
    step("new version updates the migrated column; old version sees it in units")
    for i in range(201, 201 + REPEAT):
        eq(new(NEW_UPDATE_CENTS, (1, i))[0][0], cents(i) + 1, "new update returns")
        eq(Decimal(old(OLD_SELECT, (i,))[0][1]), (Decimal(cents(i) + 1) / 100), "old reads new update")
    step("both versions keep using their statements (old inserts and updates, new reads)")
    for i in range(REPEAT):
        (rid,) = old(OLD_INSERT, (f"{tag} old again {i}", Decimal("3.10")))[0]
        old(OLD_UPDATE_AMOUNT, (Decimal("3.20"), rid))
        eq(new(NEW_SELECT, (rid,))[0][:2], (f"{tag} old again {i}", 320), "new reads old")
    step("new version writes the table the migration created (default privileges)")
    for i in range(REPEAT):
        new(NEW_TAG, (1, f"{tag} tag {i}"))


def phase2(new, tag):
    """After `complete`: the new version's connection, statements already prepared."""
    step("new version, same connection: the statements prepared before complete still run")
    for i in range(REPEAT):
        (rid,) = new(NEW_INSERT, (f"{tag} after {i}", 2000 + i))[0]
        eq(new(NEW_SELECT, (rid,))[0][:2], (f"{tag} after {i}", 2000 + i), "new reads own insert")
        new(NEW_UPDATE_CENTS, (1, rid))
        new(NEW_TAG, (rid, f"{tag} after tag {i}"))
    eq(new(NEW_COUNT, ())[0][0], SEEDED + 4 * REPEAT, "rows seen by the new version")
