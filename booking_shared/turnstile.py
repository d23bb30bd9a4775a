"""Turnstile at salon scale: which widget lists which hostname, and the names that find each widget.

A widget lists at most 15 hostnames on the Free plan, 200 on Enterprise (booking_shared.limits), so
the platform's hostnames are spread over several widgets:

- **Site widgets** (the program's): the main domain and the `booking:tenants` hostnames, in config
  order, fill widget 0, then widget 1, and so on (`site_shards`). A widget's hostnames depend only
  on the hostnames before them, so appending a tenant never moves another: a moved hostname would
  change the sitekey its booking page renders. Removing or reordering tenants does move the ones
  after them; `bookingctl diff` names every hostname a change moves.
- **SaaS widgets** (`booking:turnstile.saasWidgets` of them, declared by the program with the
  fallback hostname alone): the salons' custom hostnames are data, listed by `bookingctl tenants
  add` on the first SaaS widget with room, which the tenant row records (`tenants.turnstile_widget`).

The Worker picks the secret by the widget (binding names below): a hostname one of the
`SITE_HOSTNAMES*` lists covers is a site widget's, any other a SaaS salon's, whose widget the D1
row names. A widget's hostname list is one plain-text binding, so a site widget also stops filling
before that list passes a Worker variable's 5 KB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from booking_shared.edge import (
    SAAS_WIDGET_MARK,
    SITE_HOSTNAMES_BINDING,
    TURNSTILE_SAAS_SECRET_BINDING,
    TURNSTILE_SECRET_BINDING,
    saas_turnstile_widget_name,
)
from booking_shared.limits import (
    TURNSTILE_WIDGETS_PER_ACCOUNT,
    WORKER_ENV_VAR_BYTES,
    TurnstilePlan,
    turnstile_hostname_limit,
)

# Plain text, JSON {"site": [sitekey, ...], "saas": [sitekey, ...]} by widget index: how the Worker
# answers a booking page's GET SITEKEY_PATH with the sitekey of the widget its hostname is on.
SITEKEYS_BINDING = "TURNSTILE_SITEKEYS"
SITEKEY_PATH = "/api/turnstile/sitekey"


def indexed(binding: str, index: int) -> str:
    """A per-widget binding's name: widget 0 keeps the plain name (`TURNSTILE_SECRET_KEY`), widget n
    takes `_n` (`TURNSTILE_SECRET_KEY_1`)."""
    return binding if index == 0 else f"{binding}_{index}"


def site_secret_binding(index: int) -> str:
    return indexed(TURNSTILE_SECRET_BINDING, index)


def site_hostnames_binding(index: int) -> str:
    return indexed(SITE_HOSTNAMES_BINDING, index)


def saas_secret_binding(index: int) -> str:
    return indexed(TURNSTILE_SAAS_SECRET_BINDING, index)


def nth_widget_name(first: str, index: int) -> str:
    """Widget `index`'s name in a series whose first widget is named `first`."""
    return first if index == 0 else f"{first}-{index}"


def site_widget_name(environment: str, index: int) -> str:
    """Site widget `index`'s name (widget 0 keeps the name it had before there were several)."""
    return f"appointmentbooking {environment} booking form" + (f" {index}" if index else "")


def saas_widget_name(worker_name: str, index: int) -> str:
    """SaaS widget `index`'s name: how `bookingctl tenants` and the policy pack find it (widget 0 keeps
    the name it had before there were several)."""
    return nth_widget_name(saas_turnstile_widget_name(worker_name), index)


def saas_widget_index(name: str) -> int | None:
    """The index of a widget named as `saas_widget_name` names one, for any Worker name (`x-saas-salons`:
    0, `x-saas-salons-2`: 2); None for any other name. How a SaaS widget is recognised once the
    Worker, and so the widget's name, was renamed."""
    match = re.fullmatch(rf".+-{re.escape(SAAS_WIDGET_MARK)}(?:-([1-9][0-9]*))?", name)
    return None if match is None else int(match.group(1) or 0)


def hostnames_text(hostnames: Iterable[str]) -> str:
    """A widget's hostnames as the Worker's plain-text binding holds them (sorted JSON, compact)."""
    return json.dumps(sorted(hostnames), separators=(",", ":"))


def site_shards(hostnames: Sequence[str], plan: TurnstilePlan) -> list[tuple[str, ...]]:
    """The site widgets' hostnames: `hostnames` in order, each widget filled to the plan's limit (or
    until its Worker binding would pass 5 KB) before the next one starts."""
    limit = turnstile_hostname_limit(plan)
    shards: list[list[str]] = []
    for hostname in hostnames:
        if (not shards or len(shards[-1]) >= limit
                or len(hostnames_text([*shards[-1], hostname]).encode()) > WORKER_ENV_VAR_BYTES):
            shards.append([])
        shards[-1].append(hostname)
    return [tuple(shard) for shard in shards]


def widgets_needed(hostnames: Sequence[str], plan: TurnstilePlan, saas_widgets: int) -> int:
    """How many widgets a stack declares: its site widgets plus its SaaS widgets."""
    return len(site_shards(hostnames, plan)) + saas_widgets


def over_account_limit(hostnames: Sequence[str], plan: TurnstilePlan, saas_widgets: int) -> str | None:
    """Why the stack's widgets do not fit the account's widget limit (None when they do)."""
    site = len(site_shards(hostnames, plan))
    total = site + saas_widgets
    if total <= TURNSTILE_WIDGETS_PER_ACCOUNT:
        return None
    per = turnstile_hostname_limit(plan)
    return (f"{len(hostnames)} site hostnames (booking:domain and booking:tenants) need {site} Turnstile widgets of "
            f"at most {per} hostnames on the {plan} plan" + (f", plus {saas_widgets} SaaS widgets" if saas_widgets
                                                              else "")
            + f": {total}, but an account may have at most {TURNSTILE_WIDGETS_PER_ACCOUNT} widgets (Cloudflare's "
            "Turnstile plans page)")


@dataclass(frozen=True)
class SaasWidgetContext:
    """What the hook bound to a SaaS widget needs to list its salons again (ops/tenants/turnstile_hooks.py)."""

    stack: str
    account_id: str
    database_name: str
    worker_name: str
    fallback_hostname: str
    plan: TurnstilePlan
    # Hostnames the stack config serves (booking:domain, booking:tenants): their rows are not SaaS
    # salons, whatever their turnstile_widget says.
    served: frozenset[str] = frozenset()
    # Builds the Cloudflare SDK client; None: from CLOUDFLARE_API_TOKEN (tests pass their double's).
    client_factory: Callable[[], Any] | None = field(default=None, compare=False)
