"""What `bookingctl doctor` judges and how it reads: the checks' results, the stack's targets, API reads.

ops/observation/doctor.py runs the checks (doctor_token.py: the token and its permissions;
doctor_account.py: zone plans, entry points, widgets, the canary's query, the custom hostname
quota, the database and the bucket); each reads the account through `read`, which turns an
unreachable or unreadable API into one DoctorInputError (exit 2) and a refused read into a result
the check judges.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from booking_shared.edge import (
    ratelimit_ruleset_name,
)
from booking_shared.errors import InputError
from booking_shared.limits import (
    RateLimitRule,
    TurnstilePlan,
    ZonePlan,
)
from booking_shared.turnstile import saas_widget_name, site_shards, site_widget_name

if TYPE_CHECKING:

    from stackconfig.model import StackConfig


class DoctorInputError(InputError):
    """The checks cannot run at all: no valid token, or Cloudflare cannot be reached (exit 2)."""


Status = Literal["pass", "fail", "unchecked"]


@dataclass(frozen=True)
class Check:
    """One judged assumption: `ok` True (holds), False (does not: `fix` says what to do) or None
    (could not be checked: `detail` says why and what was seen)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    source: str = ""  # the published source of the expectation

    @property
    def status(self) -> Status:
        return "pass" if self.ok else "unchecked" if self.ok is None else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "ok": self.ok, "detail": self.detail, "fix": self.fix,
                "source": self.source}


@dataclass
class Report:
    stack: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def ok(self) -> bool:
        """No check failed (an unchecked one is reported, but is no failure)."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in ("pass", "fail", "unchecked")}
        return {"stack": self.stack, "ok": self.ok, "counts": counts, "checks": [c.to_dict() for c in self.checks]}


# --- what the stack declares, as the checks need it -------------------------------------------------

@dataclass(frozen=True)
class ZoneTarget:
    """A zone the stack serves and what it puts there."""

    zone_id: str
    label: str  # main, tenant-<slug> or saas: the names infra/ gives the zone's resources
    rules: tuple[RateLimitRule, ...] = ()  # empty: this stack does not declare the zone's entry point
    health_check: bool = False
    saas: bool = False
    stated_plan: ZonePlan = "free"  # what the stack file says the zone is on (stackconfig/model.py plan_of)
    plan_key: str = "zonePlan"  # the booking key that states it
    # booking:rateLimits.existingRulesetIds: the entry point the program imports instead of creating.
    imports_ruleset: str | None = None


@dataclass(frozen=True)
class WidgetTarget:
    """A Turnstile widget the stack declares, found by its whole name."""

    name: str
    domains: tuple[str, ...]  # what the stack lists (the SaaS widget: only the fallback hostname)
    plan: TurnstilePlan = "free"
    # The SaaS widget's real domains are data `bookingctl tenants` adds: judge what the account holds.
    grows: bool = False


@dataclass(frozen=True)
class Target:
    """Everything the checks read from the stack's config, as plain values."""

    stack: str
    environment: str
    account_id: str
    database_name: str
    bucket_name: str
    worker_name: str
    zones: tuple[ZoneTarget, ...]
    widgets: tuple[WidgetTarget, ...]
    ruleset_name: str  # the name infra/edge.py gives every entry point it declares
    notification_policy: bool = False
    saas_zone_id: str | None = None

    def zone(self, zone_id: str) -> ZoneTarget:
        return next(z for z in self.zones if z.zone_id == zone_id)


def target_of(cfg: StackConfig, stack: str) -> Target:
    """The stack's config as the checks read it: the same zones, rules and widgets infra/ declares."""
    targets = []
    for zone in cfg.zones:
        rules = cfg.rate_limit_rules(zone) if cfg.owns_zone_rulesets else ()
        targets.append(ZoneTarget(zone.zone_id, zone.label, rules,
                                  health_check=cfg.health_check and zone.zone_id == cfg.zone_id,
                                  saas=zone.label == "saas", stated_plan=zone.plan, plan_key=zone.plan_key,
                                  imports_ruleset=cfg.rate_limits.existing_ruleset_ids.get(zone.zone_id)))
    plan = cfg.turnstile.plan
    shards = site_shards([cfg.domain, *(t.hostname for t in cfg.tenants)], plan)
    widgets = [WidgetTarget(site_widget_name(cfg.environment, i), shard, plan) for i, shard in enumerate(shards)]
    if cfg.saas is not None:
        widgets += [WidgetTarget(saas_widget_name(cfg.worker_name, i), (cfg.saas.fallback_hostname,), plan, grows=True)
                    for i in range(cfg.turnstile.saas_widgets)]
    return Target(stack=stack, environment=cfg.environment, account_id=cfg.account_id,
                  database_name=cfg.database_name, bucket_name=cfg.backup_bucket_name, worker_name=cfg.worker_name,
                  zones=tuple(targets), widgets=tuple(widgets), ruleset_name=ratelimit_ruleset_name(cfg.environment),
                  notification_policy=cfg.health_check and cfg.is_production and cfg.alert_email is not None,
                  saas_zone_id=cfg.saas.zone_id if cfg.saas is not None else None)


# --- calling the API --------------------------------------------------------------------------------

def status_of(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def api_text(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors if isinstance(e, dict))
    return str(exc)


# The last read `_read` sent: what `run` names when an answer turns out not to have the shape
# the SDK's model describes (the SDK hands back whatever JSON came, unvalidated).
last_read: contextvars.ContextVar[str] = contextvars.ContextVar("doctor_last_read", default="the Cloudflare API")


def unreadable(what: str, exc: Exception) -> DoctorInputError:
    return DoctorInputError(f"Cloudflare's answer to {what} could not be read ({type(exc).__name__}: {exc}); no "
                            "check can be judged on it (a proxy error page, an incident): run `bookingctl doctor` "
                            "again later")


def read(call: Callable[[], Any], what: str) -> tuple[Any, Exception | None]:
    """(result, None), or (None, the API's 4xx) for a refused read; an unreachable API raises.

    A timeout, a dropped connection, a 429 or a 5xx after the SDK's retries, or an answer that is
    not the JSON the SDK expects, means the account could not be read: no check can be judged on
    that, so the whole run stops with exit 2.
    """
    import cloudflare

    last_read.set(what)
    try:
        return call(), None
    except (cloudflare.APIResponseValidationError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise unreadable(what, exc) from exc
    except cloudflare.APIConnectionError as exc:  # includes timeouts
        raise DoctorInputError(f"cannot reach the Cloudflare API for {what}: {exc}; check the network (and "
                               "CLOUDFLARE_BASE_URL, if set) and run `bookingctl doctor` again") from exc
    except cloudflare.APIStatusError as exc:
        if exc.status_code == 429 or exc.status_code >= 500:
            raise DoctorInputError(f"Cloudflare answered {exc.status_code} for {what} after retries "
                                   f"({api_text(exc)}); try again later") from exc
        return None, exc


