"""bookingctl and the real wrangler on the same local D1 (issue #21 point 2, the D1 half).

Migrations applied by `wrangler d1 migrations apply --local` are read by bookingctl and the reverse,
with the same `d1_migrations` rows; a bookingctl dump loads through `wrangler d1 execute --local
--file` and a `wrangler d1 export --local` is imported and restored by bookingctl, every row equal
but what D1's export itself rounds. wrangler keeps a local D1 in miniflare's SQLite file under
`.wrangler/state/v3/d1/miniflare-D1DatabaseObject/`, named after the database id; every wrangler run
here is one with nothing else running on the file.

wrangler and Node are the pinned ones of `make install-runtime` (fixtures `wrangler_bin` and
`wrangler_env` of tests/runtime/conftest.py: wrangler 4.x needs Node 22.12 or newer).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from ops.localdev import runtime_env
from tests.helpers import REPO
from tests.helpers.d1_export import export_text

pytestmark = pytest.mark.runtime

DATABASE_ID = "00000000-0000-0000-0000-000000000001"
BIG = 2**53 + 1
# Awkward values as in the review's seed.sql: quotes, unicode, a newline and a carriage return, NULLs, a
# literal backslash-n, 2^53+1, a REAL in an INTEGER column, a BLOB in a TEXT column, an AUTOINCREMENT
# counter past the rows.
SEED = f"""
INSERT INTO tenants (id, slug, name, hostname, status) VALUES
 ('t1', 'instyle', 'InStyle Hair Boutique', 'www.instylehairboutique.co.za', 'active'),
 ('t2', 'obrien', 'O''Brien''s "Salon"; Ltd', NULL, 'active'),
 ('t3', 'unicode', 'Salão 💇 Ünïcödé' || char(10) || 'second line' || char(13), 'xn--salo-1qa.example', 'suspended');
INSERT INTO users (id, tenant_id, email, name, role) VALUES ('u1', 't1', 'owner@instyle.example', 'Zoë; --', 'owner');
INSERT INTO services (id, tenant_id, name, duration_minutes, price_cents) VALUES
 ('s1', 't1', 'Cut', 45, 35000), ('s2', 't2', 'Colour', 120, {BIG}),
 ('s3', 't3', 'back\\nslash' || char(10), 30, 0);
INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at, status, notes)
 SELECT 'a' || value, 't1', 's1', 'u1', '2026-12-05T09:00:00Z', 'booked', 'it''s; "quoted" ' || value
 FROM json_each('[1,2,3,4,5,6,7,8,9,10]');
INSERT INTO api_keys (id, user_id, name, key_hash) VALUES ('k1', 'u1', 'ci', 'sha256:abc');
INSERT INTO api_usage_logs (api_key_id, user_id, ip_address, endpoint, status_code, response_time_ms) VALUES
 ('k1', 'u1', '10.0.0.1', '/api/bookings', 200, 1.5);
INSERT INTO auth_attempts (email, ip_address, success, user_agent) VALUES ('x@example.com', '10.0.0.9', 0, X'00FF10');
INSERT INTO role_audit_log (id, user_id, changed_by, action) VALUES (41, 'u1', 'u1', 'role_change');
"""

runner = CliRunner()


def wrangler(wrangler_bin: Path, project: Path, *args: str) -> str:
    """Run wrangler in `project` (the pinned Node first on PATH); its output, or the test fails."""
    env = {**runtime_env(REPO), "HOME": str(project / ".home")}
    done = subprocess.run([str(wrangler_bin), *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"wrangler {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def project(root: Path, migrations: Path) -> Path:
    """A wrangler project with one local D1 binding DB whose migrations are in `migrations`."""
    root.mkdir(parents=True)
    (root / "wrangler.jsonc").write_text(f"""{{
  // as the review's env.sh mkproj writes it
  "name": "appointmentbooking-api",
  "compatibility_date": "2025-01-01",
  "d1_databases": [{{"binding": "DB", "database_name": "appointmentbooking-db",
                     "database_id": "{DATABASE_ID}", "migrations_dir": "{migrations}"}}],
}}""")
    return root


def state_file(root: Path) -> Path:
    """The SQLite file miniflare keeps the local D1 in (one per database id)."""
    [found] = [p for p in (root / ".wrangler" / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject").glob("*.sqlite")
               if p.name != "metadata.sqlite"]
    return found


def bookingctl(*args: str) -> str:
    result = runner.invoke(app, [*args, "--project-dir", str(REPO)])
    assert result.exit_code == 0, f"bookingctl {' '.join(args)}: {result.stderr}"
    return result.stdout


def migrations_rows(path: Path) -> list[tuple[object, ...]]:
    """d1_migrations as stored: id and name with their types, applied_at's type and shape, and the counter."""
    conn = sqlite3.connect(path)
    rows = [(i, ti, n, tn, ta, bool(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", a)))
            for i, ti, n, tn, a, ta in conn.execute(
                "SELECT id, typeof(id), name, typeof(name), applied_at, typeof(applied_at) FROM d1_migrations "
                "ORDER BY id")]
    rows += conn.execute("SELECT 'sqlite_sequence', name, seq FROM sqlite_sequence WHERE name = 'd1_migrations'"
                         ).fetchall()
    rows += conn.execute("SELECT 'column', cid, name, type, \"notnull\", dflt_value, pk FROM "
                         "pragma_table_xinfo('d1_migrations')").fetchall()
    conn.close()
    return rows


def all_rows(path: Path) -> dict[str, list[str]]:
    """Every row of every table (sqlite_sequence included) as typeof:quote() per column, in rowid order."""
    conn = sqlite3.connect(path)
    out = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' "
                                 "ORDER BY name").fetchall():
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        expr = " || '|' || ".join(f"typeof(\"{c}\") || ':' || quote(\"{c}\")" for c in cols)
        out[table] = [r[0] for r in conn.execute(f'SELECT {expr} FROM "{table}" ORDER BY rowid')]
    conn.close()
    return out


def test_migrations_applied_by_either_tool_are_read_by_the_other_with_the_same_rows(
        wrangler_bin: Path, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", folder)
    root = project(tmp_path / "w", folder)
    wrangler(wrangler_bin, root, "d1", "migrations", "apply", "DB", "--local")
    ours = tmp_path / "ours.sqlite"
    bookingctl("migrate", "apply", "--local", str(ours), "--dir", str(folder), "--yes")
    assert migrations_rows(state_file(root)) == migrations_rows(ours)

    # wrangler's own generator names the next one; bookingctl applies it into wrangler's file.
    wrangler(wrangler_bin, root, "d1", "migrations", "create", "DB", "Add Staff Table")
    [created] = [p for p in folder.glob("*.sql") if "Add_Staff_Table" in p.name]
    assert re.fullmatch(r"\d{4}_Add_Staff_Table\.sql", created.name)
    with created.open("a") as f:
        f.write("CREATE TABLE staff (id TEXT PRIMARY KEY);\n")
    status = json.loads(bookingctl("migrate", "status", "--local", str(state_file(root)), "--dir", str(folder),
                                   "-f", "json"))
    assert [m["name"] for m in status["migrations"] if not m["applied"]] == [created.name]
    assert status["unknownApplied"] == []
    bookingctl("migrate", "apply", "--local", str(state_file(root)), "--dir", str(folder), "--yes")
    assert "No migrations to apply" in wrangler(wrangler_bin, root, "d1", "migrations", "list", "DB", "--local")
    bookingctl("migrate", "apply", "--local", str(ours), "--dir", str(folder), "--yes")
    assert migrations_rows(state_file(root)) == migrations_rows(ours)


def test_dumps_and_exports_cross_between_bookingctl_and_wrangler_with_every_row_equal(
        wrangler_bin: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.sqlite"
    bookingctl("migrate", "apply", "--local", str(source), "--yes")
    conn = sqlite3.connect(source)
    conn.executescript(SEED)
    conn.close()
    dest = tmp_path / "bk"
    name = bookingctl("backup", "create", "--local", str(source), "--dest", str(dest), "--label", "wr").strip()

    # bookingctl's dump through wrangler d1 execute --file into a fresh local D1: every row, 2^53+1 included.
    root = project(tmp_path / "w", REPO / "migrations")
    wrangler(wrangler_bin, root, "d1", "execute", "DB", "--local", "--file", str(dest / f"{name}.sql"), "-y")
    assert all_rows(state_file(root)) == all_rows(source)
    assert "No migrations to apply" in wrangler(wrangler_bin, root, "d1", "migrations", "list", "DB", "--local")

    # wrangler's export, imported and restored by bookingctl: equal but for what D1's exporter changes:
    # the integer JavaScript rounds, and a backslash-n in a text that also holds a newline.
    export = tmp_path / "wrangler-export.sql"
    wrangler(wrangler_bin, root, "d1", "export", "DB", "--local", "--output", str(export), "-y")
    # The double's export (tests/helpers/d1_export.py) is wrangler's, byte for byte (INSERTs with or
    # without their column list, as the exporter of the pinned wrangler writes them).
    conn = sqlite3.connect(state_file(root))
    assert export.read_text() in (export_text(conn), export_text(conn, column_names=False))
    conn.close()
    result = runner.invoke(app, ["backup", "import", str(export), "--dest", str(dest), "--label", "wrangler",
                                 "--project-dir", str(REPO)])
    assert result.exit_code == 0 and "services.price_cents: 1 value(s) past 2^53" in result.stderr, result.stderr
    restored = tmp_path / "restored.sqlite"
    bookingctl("backup", "restore", result.stdout.strip(), "--dest", str(dest), "--local", str(restored))
    expected = all_rows(source)
    expected["services"] = [r.replace(str(BIG), str(BIG - 1)).replace("back\\nslash", "back\nslash")
                            for r in expected["services"]]
    assert all_rows(restored) == expected
