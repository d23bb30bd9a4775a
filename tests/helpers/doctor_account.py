"""A healthy account for `bookingctl doctor` on the API double: the SaaS demo stack (staging plus
booking:saas) declaring its zones' rate limiting entry points, everything `pulumi up` leaves behind."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cf_double import CloudflareDouble
from tests.helpers.saas_stack import DATABASE, FALLBACK, SAAS_WIDGET, SAAS_ZONE, STACK, saas_project

MAIN_ZONE = "1a2b3c4d5e6f708192a3b4c5d6e7f809"  # Pulumi.staging.yaml booking:zoneId
MAIN_WIDGET = "appointmentbooking staging booking form"
BUCKET = "appointmentbooking-backups-staging"
RULESET = "appointmentbooking staging rate limits"
# The zones' plans are stated in the stack file (booking:zonePlan in Pulumi.staging.yaml,
# saas.zonePlan in saas_stack): business, which holds the four rules.
OWNS_RULESETS = """  booking:rateLimits:
    zoneRuleset: true
"""


def doctor_project(root: Path) -> Path:
    """The SaaS demo project whose stack also declares its zones' http_ratelimit entry points."""
    saas_project(root)
    stack_file = root / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(stack_file.read_text() + OWNS_RULESETS)
    return root


def healthy_account(double: CloudflareDouble) -> None:
    """Zones on the Business plan, the widgets, the D1 database and the bucket, as `pulumi up` leaves them."""
    double.add_zone(MAIN_ZONE, "business", name="instylehairboutique.co.za")
    double.add_zone(SAAS_ZONE, "business", name="instylebookings.co.za")
    zone = double.add_saas_zone(SAAS_ZONE)
    zone.fallback_origin = {"origin": FALLBACK, "status": "active", "errors": []}
    double.add_turnstile_widget(MAIN_WIDGET, ["staging.instylehairboutique.co.za"])
    double.add_turnstile_widget(SAAS_WIDGET, [FALLBACK])
    double.add_database(DATABASE)
    double.buckets[BUCKET] = {}
