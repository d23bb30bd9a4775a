"""What every policy module shares: type tokens, the stack's environment, messages, suppressions.

Policies are plain `(args, report_violation)` functions. `make_resource_policy` and
`make_stack_policy` wrap them so that a violation covered by a valid entry of
`policies/suppressions.yaml` is not reported, unless the policy is marked non-suppressible. Each
returns a `PackPolicy`: the pulumi_policy object and whether it may be suppressed, so the pack's
own list (`policies/pack.py`) is the one place that says which policies exist and which cannot be
silenced. Nothing here is registered as a side effect of importing a module.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

# The repository's one hardened YAML reader (size cap, duplicate keys, bounded aliases, dates kept
# as text); it imports only PyYAML, so the pack can use it under the real engine too.
from booking_shared import CHECKOUT, clock, safeyaml
from booking_shared.hostnames import environment_of
from booking_shared.naming import NAMESPACE

SUPPRESSIONS_FILE = Path(__file__).resolve().parent / "suppressions.yaml"
# Tests point the pack at their own file; in CI and `pulumi preview` the committed one is read.
SUPPRESSIONS_ENV = "BOOKING_POLICY_SUPPRESSIONS"
# Longest time a suppression may be granted for, so none is forgotten for good.
MAX_SUPPRESSION_DAYS = 180
SUPPRESSION_KEYS = ("policy", "resource", "stack", "reason", "approvedBy", "expires")
# A reviewed list of exceptions is a few KB; a larger file is a mistake or an attack on the pack.
SUPPRESSIONS_MAX_BYTES = 256 * 1024

class Report(Protocol):
    """How policies report: `urn` names another resource (stack policies), else the one validated."""

    def __call__(self, message: str, urn: str | None = None) -> None: ...


Validate = Callable[[Any, Report], None]


# --- the stack ------------------------------------------------------------------------------

def config_value(key: str) -> Any:
    """A `booking:*` value of the stack under analysis (the engine passes it in PULUMI_CONFIG)."""
    return pulumi.runtime.get_config(f"booking:{key}")


def stack_environment() -> str:
    """`production` or `staging`: `booking:environment` if set, else judged from the stack name.

    Unknown names count as production, the strictest reading.
    """
    return environment_of({f"{NAMESPACE}:environment": config_value("environment")}, pulumi.get_stack())


def project_root() -> Path:
    """The folder holding Pulumi.yaml and the committed stack files: the pack folder's parent.

    The engine (and the gate) start the pack with the pack folder as its working directory; the
    code itself may be imported from an installed copy elsewhere, so `__file__` is the last resort.
    """
    cwd = Path.cwd().resolve()
    for folder in (cwd.parent, cwd, CHECKOUT):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return cwd.parent


def message(what: str, why: str, fix: str) -> str:
    """Every violation says what is wrong, why it matters and how to fix it."""
    return f"{what}\nWhy: {why}\nFix: {fix}"


def of_type(resources: list[PolicyResource], type_token: str) -> Iterator[PolicyResource]:
    return (r for r in resources if r.resource_type == type_token)


def get(props: Mapping[str, Any] | None, *path: str) -> Any:
    """A nested property or None; never raises on missing keys."""
    value: Any = props
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


# --- suppressions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Suppression:
    index: int
    policy: str
    resource: str
    stack: str | None
    reason: str
    approved_by: str
    expires: dt.date | None
    problems: tuple[str, ...]

    def applies_to(self, policy: str, urn: str | None) -> bool:
        if self.problems or self.policy != policy:
            return False
        if self.stack is not None and self.stack != pulumi.get_stack():
            return False
        if urn is None:
            return self.resource == "stack"
        return self.resource in (urn, urn.rsplit("::", 1)[-1])


def suppressions_path() -> Path:
    return Path(os.environ.get(SUPPRESSIONS_ENV) or SUPPRESSIONS_FILE)


def load_suppressions(today: dt.date | None = None) -> list[Suppression]:
    """Parse the suppressions file; malformed, reason-less or expired entries carry `problems`."""
    path = suppressions_path()
    if not path.is_file():
        return []
    # Every policy consults the file for every resource; parse it once per version of the file.
    return list(_parse_suppressions(path, path.stat().st_mtime_ns, today or clock.today()))


@functools.lru_cache(maxsize=8)
def _parse_suppressions(path: Path, _mtime_ns: int, today: dt.date) -> tuple[Suppression, ...]:
    return tuple(_parse_entries(path, today))


def _parse_entries(path: Path, today: dt.date) -> list[Suppression]:
    try:
        data = safeyaml.load(path, max_bytes=SUPPRESSIONS_MAX_BYTES).data or {}
    except safeyaml.YamlError as exc:
        # One invalid entry standing for the file: nothing in it suppresses anything, and
        # suppressions-valid (mandatory) says why instead of the pack failing mid-analysis.
        return [Suppression(0, "", "", None, "", "", None, tuple(f"{path.name}: {p}" for p in exc.problems))]
    entries = (data.get("suppressions") or []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [Suppression(0, "", "", None, "", "", None, (f"{path.name}: expected `suppressions:` list",))]
    return [_parse_entry(index, entry, today) for index, entry in enumerate(entries)]


def _parse_entry(index: int, entry: Any, today: dt.date) -> Suppression:
    problems = []
    if not isinstance(entry, dict):
        problems.append(f"an entry must be a mapping of {', '.join(SUPPRESSION_KEYS)}")
        entry = {}
    unknown = sorted(str(k) for k in entry if k not in SUPPRESSION_KEYS)
    if unknown:
        problems.append(f"unknown key {', '.join(f'`{k}`' for k in unknown)} (allowed: {', '.join(SUPPRESSION_KEYS)})")
    text: dict[str, str] = {}
    for key in ("policy", "resource", "reason", "approvedBy"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            # A list or mapping would print as an approver ("['nobody']") and count as one.
            problems.append(f"`{key}` must be text, found {_kind(value)}")
            value = ""
        elif not (value or "").strip():
            problems.append(f"`{key}` is missing")
        text[key] = (value or "").strip()
    if text["reason"] and len(text["reason"]) < 15:
        problems.append("`reason` must say why in a sentence (15 characters or more)")
    expires = _date(entry.get("expires"))
    if expires is None:
        problems.append("`expires` must be a date (YYYY-MM-DD)")
    elif expires < today:
        problems.append(f"expired on {expires.isoformat()}")
    elif expires > today + dt.timedelta(days=MAX_SUPPRESSION_DAYS):
        problems.append(f"`expires` is more than {MAX_SUPPRESSION_DAYS} days away")
    stack = entry.get("stack")
    if stack is not None and not (isinstance(stack, str) and stack.strip()):
        # Ignoring it would apply the entry to every stack, or (as before) silently to none.
        problems.append(f"`stack` must be one stack name (text), found {_kind(stack)}")
        stack = None
    return Suppression(index, text["policy"], text["resource"], stack.strip() if stack else None,
                       text["reason"], text["approvedBy"], expires, tuple(problems))


def _kind(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    return "empty text" if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def _date(value: Any) -> dt.date | None:
    # The loader keeps dates as the text written (a `datetime` would not compare with a date).
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _filtered(name: str, report: ReportViolation, default_urn: str | None) -> Report:
    suppressions = load_suppressions()

    def report_unless_suppressed(message: str, urn: str | None = None) -> None:
        target = urn or default_urn
        if not any(s.applies_to(name, target) for s in suppressions):
            report(message, urn)

    return report_unless_suppressed


# --- building policies ----------------------------------------------------------------------

@dataclass(frozen=True)
class PackPolicy:
    """A policy of the pack, whether a suppression may silence it and whether config may lower it."""

    policy: Policy
    suppressible: bool
    # Mandatory everywhere: the pack refuses a policy config that disables it or makes it advisory.
    locked: bool = False

    @property
    def name(self) -> str:
        return str(self.policy.name)


@dataclass(frozen=True)
class Catalog:
    """What the pack holds, derived from its policy list: every name, and the ones no suppression silences."""

    names: frozenset[str]
    non_suppressible: frozenset[str]
    locked: frozenset[str] = frozenset()

    @classmethod
    def of(cls, policies: list[PackPolicy]) -> Catalog:
        return cls(frozenset(p.name for p in policies), frozenset(p.name for p in policies if not p.suppressible),
                   frozenset(p.name for p in policies if p.locked))


def _make_policy(
    name: str,
    description: str,
    validate: Validate,
    *,
    stack: bool,
    level: EnforcementLevel,
    severity: Severity,
    remediation: str,
    suppressible: bool = True,
    locked: bool | None = None,
    config_schema: PolicyConfigSchema | None = None,
) -> PackPolicy:
    common: dict[str, Any] = {"name": name, "description": description, "enforcement_level": level,
                              "severity": severity, "remediation_steps": remediation, "config_schema": config_schema}
    # What no suppression may silence and is mandatory no config may lower either, unless the
    # policy says its level is meant to be configured (the checklist's is, per environment).
    locked = (not suppressible and level == EnforcementLevel.MANDATORY) if locked is None else locked
    # A non-suppressible policy reports straight to the engine: no suppression entry is consulted.
    if stack:
        def run_stack(args: StackValidationArgs, report: ReportViolation) -> None:
            validate(args, _filtered(name, report, None) if suppressible else _unfiltered(report))

        return PackPolicy(StackValidationPolicy(validate=run_stack, **common), suppressible, locked)

    def run_resource(args: ResourceValidationArgs, report: ReportViolation) -> None:
        validate(args, _filtered(name, report, args.urn) if suppressible else _unfiltered(report))

    return PackPolicy(ResourceValidationPolicy(validate=run_resource, **common), suppressible, locked)


def _unfiltered(report: ReportViolation) -> Report:
    def report_all(message: str, urn: str | None = None) -> None:
        report(message, urn)

    return report_all


def make_resource_policy(name: str, description: str, validate: Validate, **options: Any) -> PackPolicy:
    """A policy run for each resource; `options` as `_make_policy` (level, severity, ...)."""
    return _make_policy(name, description, validate, stack=False, **options)


def make_stack_policy(name: str, description: str, validate: Validate, **options: Any) -> PackPolicy:
    """A policy run once over all the stack's resources; `options` as `_make_policy`."""
    return _make_policy(name, description, validate, stack=True, **options)
