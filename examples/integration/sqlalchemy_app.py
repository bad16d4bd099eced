"""SQLAlchemy 2 (psycopg 3 driver): one engine per version with search_path in
connect_args, declared models for each version, and reflection of the version
schema's views — which carry no primary key and no NOT NULL, so the key is declared
by hand."""

from decimal import Decimal
from typing import Optional

import psycopg
from sqlalchemy import BigInteger, Column, ForeignKey, MetaData, Numeric, Table, create_engine, func, select, text
from sqlalchemy.exc import ArgumentError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry

import common
from common import check, eq, step


def engine(dsn, schema):
    # Every pooled connection starts in the version schema; psycopg 3 (the
    # postgresql+psycopg driver) prepares a statement server-side after 5 executions.
    url = dsn.replace("postgres://", "postgresql+psycopg://", 1)
    return create_engine(
        url, connect_args={"options": f"-c search_path={schema}"}, pool_size=2, pool_pre_ping=True
    )


# The old application version's models …
class OldBase(DeclarativeBase):
    pass


class OldAccount(OldBase):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    note: Mapped[Optional[str]]


# … and the new one's: same table name, the names and types of migration 02.
class NewBase(DeclarativeBase):
    pass


class NewAccount(NewBase):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    full_name: Mapped[str]
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[Optional[str]]


class Tag(NewBase):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    label: Mapped[str]


def reflection(eng):
    step("reflection of a view: no primary key, every column nullable")
    plain = Table("accounts", MetaData(), autoload_with=eng)
    eq(list(plain.primary_key.columns), [], "reflected primary key")
    check(all(c.nullable for c in plain.columns), "reflected columns are all nullable")
    try:
        class Broken:
            pass

        registry().map_imperatively(Broken, plain)
        raise AssertionError("mapping a reflected view without a key should fail")
    except ArgumentError as e:
        check("primary key" in str(e), str(e))
    step("the fix: declare the key column, reflect the rest")
    fixed = Table(
        "accounts", MetaData(), Column("id", BigInteger, primary_key=True), autoload_with=eng
    )
    eq([c.name for c in fixed.primary_key.columns], ["id"], "declared primary key")

    class Reflected:
        pass

    registry().map_imperatively(Reflected, fixed)
    with Session(eng) as s:
        row = s.get(Reflected, 1)
        eq((row.full_name, row.amount_cents), ("seed 1", 100), "reflected model reads")
        r = Reflected()
        r.full_name, r.amount_cents = "reflected insert", 4242
        s.add(r)
        s.commit()
        check(r.id is not None, "the reflected model got its id back (RETURNING)")


def run(a):
    old_eng, new_eng = engine(a.dsn, a.old), engine(a.dsn, a.new)
    # The new version schema exists only once the backfill filled its columns: the old
    # version writes first, the new one reads those rows after `ratchet backfill`.
    step("before the backfill: old version inserts and updates rows not backfilled yet")
    written = []
    for i in range(common.REPEAT):
        with Session(old_eng) as s:
            acc = OldAccount(name=f"sa old {i}", amount=Decimal(f"{i}.50"))
            s.add(acc)
            s.commit()
            written.append((acc.id, (f"sa old {i}", common.cents(f"{i}.50"))))
    touched = []
    for i in range(1, common.REPEAT + 1):
        with Session(old_eng) as s:
            s.get(OldAccount, 300 + i).note = "sa touched"
            s.commit()
        touched.append((300 + i, (common.cents(300 + i), "sa touched")))

    common.handover(a, 1)  # run.sh: ratchet backfill

    step("the new version reads what the old one wrote before the backfill")
    for rid, want in written:
        with Session(new_eng) as s:
            got = s.get(NewAccount, rid)
            eq((got.full_name, got.amount_cents), want, "new reads")
    for rid, want in touched:
        with Session(new_eng) as s:
            got = s.get(NewAccount, rid)
            eq((got.amount_cents, got.note), want, "new reads")

    step("new version inserts and updates; the old version reads them")
    for i in range(common.REPEAT):
        with Session(new_eng) as s:
            acc = NewAccount(full_name=f"sa new {i}", amount_cents=300 + i)
            s.add(acc)
            s.flush()
            acc.amount_cents += 1
            s.add(Tag(account_id=acc.id, label=f"sa tag {i}"))
            s.commit()
            rid = acc.id
        with Session(old_eng) as s:
            got = s.get(OldAccount, rid)
            eq((got.name, got.amount), (f"sa new {i}", Decimal(301 + i) / 100), "old reads")
    step("new version updates backfilled rows; the old version reads them")
    for i in range(401, 401 + common.REPEAT):
        with Session(new_eng) as s:
            s.get(NewAccount, i).amount_cents += 5
            s.commit()
        with Session(old_eng) as s:
            eq(s.get(OldAccount, i).amount, Decimal(common.cents(i) + 5) / 100, "old reads")
    reflection(new_eng)

    # The pool resets a connection with ROLLBACK when it is checked in, and psycopg
    # forgets its prepared statements on ROLLBACK: server-side prepares pay off within
    # one checkout. A session bound to a connection it holds keeps them.
    held = new_eng.connect()
    hs = Session(bind=held)

    def repeated():
        for i in range(1, common.REPEAT + 1):
            acc = hs.get(NewAccount, 600 + i, populate_existing=True)
            acc.note = f"sa held {i}"
            hs.commit()
        return hs.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()

    n = repeated()
    check(n >= 1, "psycopg prepared the ORM's statements server-side")
    step(f"server-side prepared statements on a held new-version connection: {n}")

    common.handover(a, 2)  # run.sh: ratchet validate, ratchet complete

    step("new version after complete: pooled connections, prepared statements, same models")
    for i in range(common.REPEAT):
        with Session(new_eng) as s:
            acc = NewAccount(full_name=f"sa after {i}", amount_cents=i)
            s.add(acc)
            s.commit()
            eq(s.get(NewAccount, 1).full_name, "seed 1", "new reads after complete")
    with Session(new_eng) as s:
        total = s.scalar(select(func.count()).select_from(NewAccount))
        eq(total, common.SEEDED + 3 * common.REPEAT + 1, "rows seen by the new version")
    n = repeated()
    check(n >= 1, "the prepared statements are still there")
    step(f"the held session's {n} prepared statements still run after complete")
    hs.close()
    held.close()
    reflection(new_eng)
    step("old version after complete: its schema is gone, its statements fail cleanly")
    try:
        with Session(old_eng) as s:
            s.get(OldAccount, 1)
        raise AssertionError("the old version still answered after complete")
    except ProgrammingError as e:
        check(isinstance(e.orig, psycopg.errors.UndefinedTable), repr(e.orig))
    old_eng.dispose()
    new_eng.dispose()


common.main(run)
