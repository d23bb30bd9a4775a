# ruff: noqa: F811
"""hostile27c: of several same-named Turnstile widgets, drift (2845111) picks the one whose hostnames EQUAL
the declared ones; a SaaS widget's live hostnames never do (each salon's is added by `tenants add`).

"""

from __future__ import annotations

import time

from cloudflare import Cloudflare

from ops.observation.drift import _widget
from ops.observation.drift_model import Context, Declared
from tests.conftest import double  # noqa: F401  (fixture)
from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble
from tests.helpers.saas_stack import FALLBACK, SAAS_WIDGET, STACK

WIDGET = "cloudflare:index/turnstileWidget:TurnstileWidget"


def test_W1_a_saas_widget_with_salons_is_offered_for_deletion_beside_a_hand_copy(double: CloudflareDouble) -> None:
    """MEDIUM. ops/observation/drift.py:143-157. The stack's SaaS widget lists the fallback hostname (declared)
    and every salon's hostname (`tenants add`: data, not declared, drift.py:161-163 knows it). Someone makes
    a same-named widget in the dashboard with the fallback hostname alone (a test, a copy to try a mode).
    The sort key `sorted(w.domains) != want_domains` puts the COPY first (its hostnames equal the declared
    ones; the stack's never do once one salon exists), so the copy is compared, and the stack's own widget,
    older, is reported as "newer than the one compared here" with "delete <its sitekey> in the dashboard":
    the widget every salon's booking form uses. Exactly the hostile27b G3b bug, back for the SaaS widget.
    (The key should be: lists every declared hostname, then oldest.)"""
    stacks = double.add_turnstile_widget(SAAS_WIDGET, [FALLBACK, "www.glamoursalon.co.za", "www.curls.co.za"])
    time.sleep(1.1)  # created_on has second resolution
    copy = double.add_turnstile_widget(SAAS_WIDGET, [FALLBACK])
    declared = Declared(WIDGET, "saas-widget", {"name": SAAS_WIDGET, "domains": [FALLBACK], "mode": "managed"})
    with Cloudflare(api_token=TOKEN, base_url=double.base_url, max_retries=0) as client:
        ctx = Context(client, ACCOUNT, STACK, frozenset())
        _widget(ctx, declared, {})
    offered = [d for d in ctx.differences if d.kind == "unmanaged"]
    assert [d.live for d in offered] == [copy["sitekey"]], (
        f"the stack's own SaaS widget {stacks['sitekey']} (older, with the salons' hostnames) is offered for "
        f"deletion instead of the hand copy {copy['sitekey']}: {[(d.detail, d.fix) for d in offered]}")
