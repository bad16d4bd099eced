"""Django: one DATABASES entry per version with `OPTIONS: {'options': '-c
search_path=…'}`, unmanaged models, and `inspectdb --include-views` on a version
schema — whose views carry no primary key, fixed by declaring `id` the key."""

import io
import sys
from decimal import Decimal
from urllib.parse import urlparse

import django
from django.conf import settings

import common
from common import check, eq, step

a = common.args()


def database(schema, **extra):
    u = urlparse(a.dsn)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": u.path.lstrip("/"),
        "USER": u.username,
        "HOST": u.hostname,
        "PORT": u.port,
        "CONN_MAX_AGE": None,  # persistent connections, as a long-running server keeps
        "OPTIONS": {"options": f"-c search_path={schema}", **extra},
    }


settings.configure(
    DATABASES={
        "default": database(a.new),
        # Server-side binding (psycopg 3): Django then lets psycopg prepare statements
        # on the server after prepare_threshold executions.
        "new": database(a.new, server_side_binding=True, prepare_threshold=5),
        "old": database(a.old),
    },
    INSTALLED_APPS=[],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections, models  # noqa: E402
from django.db.utils import ProgrammingError  # noqa: E402


class OldAccount(models.Model):
    # The identity column is the key; BigAutoField makes Django leave it out of INSERTs
    # and read it back with RETURNING, so the view's default (the identity) fills it.
    id = models.BigAutoField(primary_key=True)
    name = models.TextField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    note = models.TextField(null=True)

    class Meta:
        app_label = "bank_v1"
        db_table = "accounts"
        managed = False  # ratchet owns the schema: never let `migrate` touch it


class NewAccount(models.Model):
    id = models.BigAutoField(primary_key=True)
    full_name = models.TextField()
    amount_cents = models.BigIntegerField()
    note = models.TextField(null=True)

    class Meta:
        app_label = "bank_v2"
        db_table = "accounts"
        managed = False


def inspect():
    step("inspectdb --include-views on the new version schema")
    out = io.StringIO()
    call_command("inspectdb", "accounts", database="new", include_views=True, stdout=out)
    code = out.getvalue()
    body = code[code.index("class Accounts(models.Model)"):]
    check("primary_key=True" not in body, "a view has no primary key for inspectdb to see")
    check("id = models.BigIntegerField(blank=True, null=True)" in body, code)

    def load(source, label):
        scope = {}
        source = source.replace("class Meta:\n", f"class Meta:\n        app_label = '{label}'\n")
        exec(compile(source, "<inspectdb>", "exec"), scope)
        return scope["Accounts"]

    # As generated, Django refuses the model: a field named `id` must be the key.
    ids = [e.id for e in load(code, "inspected_raw").check()]
    check("models.E004" in ids, f"system checks of the generated model: {ids}")
    step("as generated: models.E004 ('id' can only be used as a field name if the field also sets 'primary_key=True')")
    # The fix: declare it the key (BigAutoField: the identity fills it on INSERT).
    fixed = code.replace(
        "id = models.BigIntegerField(blank=True, null=True)",
        "id = models.BigAutoField(primary_key=True)",
    )
    Accounts = load(fixed, "inspected")
    errors = [e for e in Accounts.check() if e.level >= 40]
    eq(errors, [], "system checks of the fixed inspected model")
    row = Accounts.objects.using("new").get(pk=2)
    eq((row.full_name, row.amount_cents), ("seed 2", 200), "inspected model reads")
    made = Accounts.objects.using("new").create(full_name="inspected", amount_cents=1)
    check(made.id is not None, "inspected model got its id back")


def prepared(alias):
    with connections[alias].cursor() as c:
        c.execute("SELECT count(*) FROM pg_prepared_statements")
        return c.fetchone()[0]


def main():
    # The new version schema exists only once the backfill filled its columns: the old
    # version writes first, the new one reads those rows after `ratchet backfill`.
    step("before the backfill: old version inserts and updates rows not backfilled yet")
    written = []
    for i in range(common.REPEAT):
        rid = OldAccount.objects.using("old").create(name=f"dj old {i}", amount=f"{i}.75").id
        written.append((rid, (f"dj old {i}", common.cents(f"{i}.75"))))
    for i in range(401, 401 + common.REPEAT):
        OldAccount.objects.using("old").filter(pk=i).update(note="dj touched")

    common.handover(a, 1)  # run.sh: ratchet backfill

    step("the new version reads what the old one wrote before the backfill")
    for rid, want in written:
        got = NewAccount.objects.using("new").get(pk=rid)
        eq((got.full_name, got.amount_cents), want, "new reads")
    for i in range(401, 401 + common.REPEAT):
        got = NewAccount.objects.using("new").get(pk=i)
        eq((got.amount_cents, got.note), (common.cents(i), "dj touched"), "new reads")

    step("new version inserts and updates; the old version reads them")
    for i in range(common.REPEAT):
        acc = NewAccount.objects.using("new").create(full_name=f"dj new {i}", amount_cents=500 + i)
        NewAccount.objects.using("new").filter(pk=acc.pk).update(amount_cents=models.F("amount_cents") + 1)
        got = OldAccount.objects.using("old").get(pk=acc.pk)
        eq((got.name, str(got.amount)), (f"dj new {i}", f"{(501 + i) / 100:.2f}"), "old reads")
    step("new version updates backfilled rows; the old version reads them")
    for i in range(501, 501 + common.REPEAT):
        NewAccount.objects.using("new").filter(pk=i).update(amount_cents=models.F("amount_cents") + 5)
        eq(OldAccount.objects.using("old").get(pk=i).amount, Decimal(common.cents(i) + 5) / 100, "old")
    inspect()
    n = prepared("new")
    check(n >= 1, "server-side binding prepared statements")
    step(f"server-side prepared statements on the new-version connection: {n}")

    common.handover(a, 2)  # run.sh: ratchet validate, ratchet complete

    step("new version after complete: same persistent connection, same prepared statements")
    for i in range(common.REPEAT):
        acc = NewAccount.objects.using("new").create(full_name=f"dj after {i}", amount_cents=i)
        eq(NewAccount.objects.using("new").get(pk=acc.pk).amount_cents, i, "new reads")
        eq(NewAccount.objects.using("default").get(pk=1).full_name, "seed 1", "default alias")
    eq(NewAccount.objects.using("new").count(), common.SEEDED + 3 * common.REPEAT + 1, "rows")
    step("old version after complete: its schema is gone, its statements fail cleanly")
    try:
        OldAccount.objects.using("old").get(pk=1)
        raise AssertionError("the old version still answered after complete")
    except ProgrammingError as e:
        check("does not exist" in str(e), str(e))


try:
    main()
except BaseException as e:  # noqa: BLE001
    import traceback

    traceback.print_exc()
    print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    sys.exit(1)
print("ok", flush=True)
