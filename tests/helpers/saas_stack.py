"""A scratch project whose stack turns the Cloudflare for SaaS path on, for the `tenants` commands.

The committed stacks carry no `booking:saas` (no real SaaS zone id is known); this is the committed
staging stack plus the key, as README "Onboarding a salon" shows it.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from ops.database.migrations import apply, discover
from ops.targets import LocalDatabase
from tests.helpers import REPO

STACK = "saasdemo"
SAAS_ZONE = "cd" * 16
FALLBACK = "salons-staging.instylebookings.co.za"
SAAS_ZONE_NAME = "instylebookings.co.za"  # the zone the fallback hostname is in
DATABASE = "appointmentbooking-db-staging"
# The SaaS salons' Turnstile widget `pulumi up` declares for the stack (booking:workerName + suffix).
SAAS_WIDGET = "appointmentbooking-api-staging-saas-salons"
SAAS_CONFIG = f"""  booking:saas:
    zoneId: "{SAAS_ZONE}"
    fallbackHostname: {FALLBACK}
    minTlsVersion: "1.2"
    zonePlan: business
"""


def saas_project(root: Path) -> Path:
    """Pulumi.yaml, the worker bundle and `Pulumi.saasdemo.yaml` (staging + booking:saas) under `root`."""
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "infra").mkdir()
    (root / "infra" / "__main__.py").write_text("")
    (root / "worker" / "src").mkdir(parents=True)
    shutil.copy(REPO / "worker" / "src" / "index.js", root / "worker" / "src" / "index.js")
    (root / f"Pulumi.{STACK}.yaml").write_text((REPO / "Pulumi.staging.yaml").read_text() + SAAS_CONFIG)
    return root


def migrated_sqlite(path: Path) -> Path:
    """A SQLite file with the repository's schema, as D1 has it after `migrate apply`."""
    sqlite3.connect(path).close()
    with LocalDatabase(path) as db:
        apply(db, discover(REPO / "migrations"))
    return path
