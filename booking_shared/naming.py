"""Names the platform is built from: the config namespace, secrets and their bindings, staging markers."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACE = "booking"


@dataclass(frozen=True)
class Secret:
    """An integration credential: its stack config key, the typed config field and the Worker binding."""

    config_key: str  # booking:<config_key> in Pulumi.<stack>.yaml, set with `pulumi config set --secret`
    field: str  # the attribute of stackconfig.model.StackConfig
    binding: str  # the secret_text binding the Worker code reads from `env`


# Integration credentials the Worker needs. They may only arrive as Pulumi secrets; a plain value
# in a stack file is refused.
SECRETS: tuple[Secret, ...] = (
    Secret("paystackSecretKey", "paystack_secret_key", "PAYSTACK_SECRET_KEY"),
    Secret("googleCalendarCredentials", "google_calendar_credentials", "GOOGLE_CALENDAR_CREDENTIALS"),
    Secret("whatsappToken", "whatsapp_token", "WHATSAPP_TOKEN"),
)
SECRET_KEYS: tuple[str, ...] = tuple(s.config_key for s in SECRETS)
SECRET_BINDING_NAMES: tuple[str, ...] = tuple(s.binding for s in SECRETS)

# Binding names the Worker code reads from `env` (and the Pages project from its bindings).
DB_BINDING = "DB"
VERSION_METADATA_BINDING = "CF_VERSION_METADATA"
ENVIRONMENT_VAR = "ENVIRONMENT"
# Workers Analytics Engine: the reference Worker writes one data point per request to this binding
# (index: the version id; doubles: HTTP status, milliseconds), which the canary reads per version.
REQUESTS_BINDING = "REQUESTS"
# The Pages project's `<project>.pages.dev`, bound only with booking:saas: salons' custom hostnames
# reach an originless fallback record, so the Worker fetches their pages from the project itself.
PAGES_ORIGIN_VAR = "PAGES_ORIGIN"

# Words that mark a non-production name; a production database or domain carrying one of them is
# the mix-up the guide's separate staging database exists to prevent.
NON_PRODUCTION_MARKERS = frozenset({"staging", "stage", "stg", "dev", "test", "preview", "qa", "sandbox"})


def looks_like_staging(name: str) -> bool:
    """True when a database name or hostname carries a non-production marker word.

    Words are split on hyphens, underscores and dots, so ``appointmentbooking-db-staging`` and
    ``staging.example.co.za`` match while ``testimonials`` or ``devonport`` do not.
    """
    return any(word in NON_PRODUCTION_MARKERS for word in re.split(r"[-_.]", name.lower()))


def requests_dataset(worker_name: str) -> str:
    """The Analytics Engine dataset of a Worker's requests: its name as a plain SQL identifier.

    The SQL API names a dataset as a table; one that is not an ordinary identifier would need quoting
    (cloudflare-docs analytics/analytics-engine/sql-api.mdx), so hyphens become underscores.
    """
    return re.sub(r"[^a-z0-9_]", "_", worker_name.lower()) + "_requests"
