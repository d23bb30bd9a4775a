"""Desired-state diff of a stack between a git ref and the working tree, for pull-request review.

Each side is planned in its own process from its own tree (the base in a temporary `git worktree`),
with its own program and its own policy pack: importing the base's `infra` into this process would
pick up the working tree's modules instead. Both sides print `bookingctl plan --format json`, whose
inputs are already redacted, so the diff can never show a secret.

Replacements: the engine decides them from the provider's schema, which needs the provider plugin.
Offline we use the replace-on-change inputs of the resource types this program declares (from the
provider's schema: every WorkerVersion input, names and parents elsewhere); changes to other inputs
show as in-place updates.

Turnstile widgets get their own warnings: an update of a widget whose domains are data (the SaaS
salons' widgets, `<workerName>-saas-salons[-n]`) is a PUT of the whole widget with the domains the
live widget lists when `pulumi up` reads it, so a salon listed after that read is off it until its
after-update hook lists it again; and a change that moves site hostnames from one widget to another
gives those pages a new sitekey.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booking_shared import tokens
from booking_shared.errors import InputError
from booking_shared.turnstile import saas_widget_index

DATA_BEARING = {tokens.D1: "D1 database", tokens.BUCKET: "backup bucket"}
ALL_INPUTS = "*"
REPLACE_ON_CHANGE: dict[str, set[str]] = {
    tokens.D1: {"accountId", "name", "jurisdiction", "primaryLocationHint"},
    tokens.BUCKET: {"accountId", "name", "location", "jurisdiction"},
    tokens.LIFECYCLE: {"accountId", "bucketName"},
    tokens.WORKER: {"accountId"},
    tokens.VERSION: {ALL_INPUTS},
    tokens.DEPLOYMENT: {"accountId", "scriptName"},
    tokens.ROUTE: {"zoneId"},
    tokens.DNS: {"zoneId"},
    tokens.PAGES: {"accountId", "name"},
    tokens.PAGES_DOMAIN: {"accountId", "projectName", "name"},
    tokens.HEALTHCHECK: {"zoneId"},
    tokens.NOTIFICATION: {"accountId"},
    tokens.RULESET: {"accountId", "zoneId", "kind", "phase"},
    tokens.TURNSTILE: {"accountId", "region"},
    tokens.FALLBACK_ORIGIN: {"zoneId"},
}


class DiffError(InputError):
    """A side could not be planned (bad ref, bad config); the message says which and why."""


@dataclass(frozen=True)
class RolloutSummary:
    """The head stack's `booking:rollout`, as far as a reviewer needs it to read a release."""

    canary_percent: float
    bake_minutes: int
    error_rate_percent: float
    latency_seconds: float


@dataclass
class Change:
    action: str  # add | delete | replace | update
    urn: str
    type: str
    name: str
    inputs: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # key -> (before, after)
    warning: str | None = None
    new_inputs: dict[str, Any] = field(default_factory=dict)  # an added resource's inputs (redacted)

    @property
    def paths(self) -> list[tuple[str, Any, Any]]:
        """Each changed leaf as (path, before, after), e.g. ("rules[0].conditions.prefix", "", "logs/")."""
        found: list[tuple[str, Any, Any]] = []
        for key, (before, after) in self.inputs.items():
            found += leaf_changes(key, before, after)
        return found


_MISSING = object()


def leaf_changes(path: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """Where two input values differ, down to the leaves: a nested change is shown as the keys and
    values that changed, not as two long documents (a list that changed length is shown whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(before) | set(after)):
            old, new = before.get(key, _MISSING), after.get(key, _MISSING)
            if old != new:
                found += leaf_changes(f"{path}.{key}", None if old is _MISSING else old,
                                      None if new is _MISSING else new)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [change for index, (old, new) in enumerate(zip(before, after, strict=True)) if old != new
                for change in leaf_changes(f"{path}[{index}]", old, new)]
    return [(path, before, after)]


@dataclass
class StackDiff:
    stack: str
    base_ref: str
    changes: list[Change]
    policy_new: list[dict[str, Any]]
    policy_fixed: list[dict[str, Any]]
    policy_still: list[dict[str, Any]]
    base_resources: dict[str, dict[str, Any]]
    head_resources: dict[str, dict[str, Any]]
    # What merging this does to the serving Worker (None: no new version is deployed).
    release: str | None = None
    # Unchanged resources whose inputs take a replaced resource's new id (URN -> "update (new id of
    # api-version)"): offline ids come from logical names, so their inputs look the same, but the
    # engine updates or replaces them (a deployment points at the new version).
    followers: dict[str, str] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Change]:
        return [c for c in self.changes if c.warning]

    @property
    def new_mandatory(self) -> list[dict[str, Any]]:
        return [v for v in self.policy_new if v["level"] == "mandatory"]

    def counts(self) -> dict[str, int]:
        return {a: sum(1 for c in self.changes if c.action == a) for a in ("add", "update", "replace", "delete")}


def plan_in_subprocess(project_dir: Path, stack: str, policy_config: Path | None) -> dict[str, Any]:
    """`bookingctl plan STACK --format json` run from `project_dir`'s own code."""
    env = dict(os.environ, PYTHONPATH=str(project_dir))
    cmd = [sys.executable, "-m", "bookingctl", "plan", stack, "--format", "json", "--project-dir", str(project_dir)]
    if policy_config is not None:
        cmd += ["--policy-config", str(policy_config.resolve())]
    proc = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise DiffError(f"planning {stack} in {project_dir} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def plan_ref(repo: Path, commit: str, stack: str, policy_config: Path | None) -> dict[str, Any]:
    """Plan the stack as of `commit` in a temporary worktree (removed afterwards)."""
    relative = _project_relative(repo)
    with tempfile.TemporaryDirectory(prefix="bookingctl-diff-") as tmp:
        tree = Path(tmp) / "base"
        added = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), commit],
                               capture_output=True, text=True)
        if added.returncode != 0:
            raise DiffError(f"cannot check out {commit}: {added.stderr.strip()}")
        try:
            return plan_in_subprocess(tree / relative, stack, policy_config)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], capture_output=True)


def _commit(repo: Path, ref: str) -> str:
    """The commit `ref` names; a ref that looks like an option (`-f`) never reaches git as one."""
    if not ref or ref.startswith("-"):
        raise DiffError(f"--base {ref!r} is not a git ref; name a branch, tag or commit, e.g. origin/main")
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options",
                            f"{ref}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        raise DiffError(f"cannot check out {ref!r}: not a commit in {repo} (is it fetched? try `git fetch`)")
    return found.stdout.strip()


def _project_relative(project_dir: Path) -> Path:
    top = subprocess.run(["git", "-C", str(project_dir), "rev-parse", "--show-toplevel"],
                         capture_output=True, text=True)
    if top.returncode != 0:
        raise DiffError(f"{project_dir} is not inside a git repository")
    return project_dir.resolve().relative_to(Path(top.stdout.strip()).resolve())


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def compare(stack: str, base_ref: str, base: dict[str, Any], head: dict[str, Any],
            rollout: RolloutSummary | None = None) -> StackDiff:
    """Resource and policy differences between two plan JSON documents (`rollout`: the head stack's
    canary settings, quoted when the change releases a new Worker version)."""
    before = {r["urn"]: r for r in base["resources"]}
    after = {r["urn"]: r for r in head["resources"]}
    changes: list[Change] = []
    for urn, r in after.items():
        if urn not in before:
            changes.append(Change("add", urn, r["type"], r["name"], new_inputs=dict(r.get("inputs") or {})))
    for urn, old in before.items():
        new = after.get(urn)
        if new is None:
            changes.append(Change("delete", urn, old["type"], old["name"], warning=_warning(old, "deleted")))
            continue
        diff = _changed_keys(old.get("inputs") or {}, new.get("inputs") or {})
        if not diff:
            continue
        forcing = REPLACE_ON_CHANGE.get(old["type"], set())
        replace = ALL_INPUTS in forcing or bool(forcing & set(diff))
        action = "replace" if replace else "update"
        changes.append(Change(action, urn, old["type"], old["name"], diff,
                              warning=_warning(old, "replaced") if replace else None))
    _widget_warnings(stack, changes, before, after)
    order = {"delete": 0, "replace": 1, "update": 2, "add": 3}
    changes.sort(key=lambda c: (c.warning is None, order[c.action], c.urn))

    def keyed(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {(v["policy"], v["resource"], v["message"].splitlines()[0] if v["message"] else ""): v
                for v in doc.get("violations") or []}

    old_v, new_v = keyed(base), keyed(head)
    followers = _followers(changes, after)
    return StackDiff(
        stack=stack, base_ref=base_ref, changes=changes,
        policy_new=[v for k, v in new_v.items() if k not in old_v],
        policy_fixed=[v for k, v in old_v.items() if k not in new_v],
        policy_still=[v for k, v in new_v.items() if k in old_v],
        base_resources=before, head_resources=after,
        release=_release(stack, changes, before, after, followers, rollout), followers=followers)


def _followers(changes: list[Change], after: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Unchanged resources that depend on a replaced one, and so take its new id: URN -> what the
    engine does to them, e.g. "update (new id of api-version)". A follower whose every input forces a
    replacement (a WorkerVersion: a new database id in its bindings) is replaced in turn, and its own
    dependents follow it."""
    replaced = {c.urn: c.name for c in changes if c.action == "replace"}
    changed = {c.urn for c in changes}
    found: dict[str, str] = {}
    grew = True
    while grew:
        grew = False
        for urn, r in after.items():
            cause = next((replaced[dep] for dep in r.get("dependencies") or [] if dep in replaced), None)
            if urn in changed or urn in found or cause is None:
                continue
            action = "replace" if ALL_INPUTS in REPLACE_ON_CHANGE.get(r["type"], set()) else "update"
            found[urn] = f"{action} (new id of {cause})"
            if action == "replace":
                replaced[urn] = r["name"]
            grew = True
    return found


def _release(stack: str, changes: list[Change], before: dict[str, dict[str, Any]],
             after: dict[str, dict[str, Any]], followers: dict[str, str],
             rollout: RolloutSummary | None) -> str | None:
    """What merging this does to the serving Worker, in words, when it deploys a new version.

    A new version reaches traffic through a deployment carrying the before-traffic hook (infra/hooks.py):
    on an update that hook runs the canary; a stack's first deployment has nothing to compare with.
    """
    touched = {c.urn for c in changes if c.action in ("add", "update", "replace")} | set(followers)
    deployments = [urn for urn in touched if after.get(urn, {}).get("type") == tokens.DEPLOYMENT]
    if not deployments:
        return None
    deployment = after[sorted(deployments)[0]]
    worker = (deployment.get("inputs") or {}).get("scriptName") or deployment["name"]
    if deployment["urn"] not in before:
        return (f"Worker release: merging this makes the first deployment of Worker {worker} on {stack}: no "
                "version serves yet, so there is no canary; `pulumi up` applies the migrations and 100 % of "
                f"traffic goes to the new version at once (then run `bookingctl verify --stack {stack}`)")
    hooks = {name for names in (deployment.get("hooks") or {}).values() for name in names}
    canary = "the canary (booking:rollout)"
    if rollout is not None:
        canary = (f"the canary: {rollout.canary_percent:g} % of requests for {rollout.bake_minutes} min, rolled "
                  f"back at once above {rollout.error_rate_percent:g} % errors or a {rollout.latency_seconds:g} s "
                  "median")
    if "booking-before-traffic" not in hooks:
        return (f"Worker release: merging this deploys a new version of Worker {worker} to {stack}, and its "
                "deployment carries no booking-before-traffic hook: it takes 100 % of traffic at once, with no canary")
    return (f"Worker release: merging this deploys a new version of Worker {worker} to {stack}. `pulumi up` first "
            f"takes a Time Travel bookmark and applies pending migrations, then runs {canary}; only then does the "
            "new version take 100 %. A failed canary sends all traffic back and quarantines the bundle "
            "(docs/releases.md \"Canary releases\"; at 3 a.m.: docs/runbooks/failed-canary.md)")


def _domains_are_data(resource: dict[str, Any]) -> bool:
    """A SaaS salons' widget, known by its name (`<workerName>-saas-salons[-n]`)."""
    name = (resource.get("inputs") or {}).get("name")
    return resource["type"] == tokens.TURNSTILE and isinstance(name, str) and saas_widget_index(name) is not None


def _site_widgets(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Hostname -> the name of the site widget (domains declared, not data) listing it."""
    return {str(host): r["name"] for r in resources.values() if r["type"] == tokens.TURNSTILE
            and not _domains_are_data(r) for host in (r.get("inputs") or {}).get("domains") or []}


def _widget_warnings(stack: str, changes: list[Change], before: dict[str, dict[str, Any]],
                     after: dict[str, dict[str, Any]]) -> None:
    """Warn of a SaaS widget's update (a salon listed after the program's read of the live widget is
    off it until its hook lists it again) and of site hostnames moving to another widget (their pages
    change sitekey)."""
    was, now = _site_widgets(before), _site_widgets(after)
    for change in changes:
        resource = after.get(change.urn) or before[change.urn]
        if change.action in ("update", "replace") and _domains_are_data(resource):
            hooks = (resource.get("hooks") or {}).get("after_update" if change.action == "update" else "after_create")
            if change.action == "update":
                what = (f"Turnstile widget {change.name} would be updated in place, and its domains are data "
                        "(`bookingctl tenants` lists the SaaS salons on it): the provider's update is a PUT of the "
                        "whole widget with the domains the live widget lists when `pulumi up` reads it (offline: "
                        f"{shown((resource.get('inputs') or {}).get('domains'))}), which keeps every salon listed "
                        "by then; a salon `tenants add` lists between that read and the PUT is taken off")
                again = "it"
            else:
                what = (f"Turnstile widget {change.name} would be replaced: a new widget, with a new sitekey and "
                        "secret and none of the SaaS salons `bookingctl tenants` listed on the old one")
                again = "them"
            change.warning = what + (
                f"; its hook {', '.join(hooks)} lists {again} again from the tenants table right after, so their "
                f"bookings fail the bot check for seconds at most; check `bookingctl tenants status --stack {stack}` "
                "after `pulumi up`" if hooks else
                f"; no hook lists {again} again: a salon off the widget fails the bot check (403) until `bookingctl "
                "tenants add` runs again for it")
        elif resource["type"] == tokens.TURNSTILE and change.action in ("update", "add"):
            moved = sorted(h for h, name in now.items() if name == change.name and was.get(h, name) != name)
            if moved:
                listed = ", ".join(f"{h} (from {was[h]})" for h in moved[:5]) + (
                    f" and {len(moved) - 5} more" if len(moved) > 5 else "")
                change.warning = (f"{len(moved)} hostname(s) move to Turnstile widget {change.name}: {listed}; "
                                  "each of their pages gets another sitekey and tokens issued on the old widget "
                                  "meanwhile fail; a tenant appended at the end of booking:tenants moves no other, "
                                  "removing or reordering tenants moves every one after them")


def _warning(resource: dict[str, Any], what: str) -> str | None:
    kind = DATA_BEARING.get(resource["type"])
    guarded = " (it is protected: the engine refuses until protect is lifted)" if resource.get("protect") else ""
    if kind:
        return f"{kind} {resource['name']} would be {what}: its data goes with it{guarded}"
    if guarded:
        return f"protected resource {resource['name']} would be {what}{guarded}"
    return None


def diff(project_dir: Path, stack: str, base_ref: str, policy_config: Path | None = None) -> StackDiff:
    """Plan both sides (in parallel) and compare them."""
    commit = _commit(project_dir, base_ref)  # a bad ref fails before anything is planned
    with ThreadPoolExecutor(max_workers=2) as pool:
        base = pool.submit(plan_ref, project_dir, commit, stack, policy_config)
        head = pool.submit(plan_in_subprocess, project_dir, stack, policy_config)
        rollout = _rollout(project_dir, stack)
        return compare(stack, base_ref, base.result(), head.result(), rollout)


def _rollout(project_dir: Path, stack: str) -> RolloutSummary | None:
    """The working tree's canary settings; None when its config does not parse (its plan then fails
    and says why)."""
    from bookingctl.options import load_stack_config

    try:
        cfg = load_stack_config(stack, project_dir)
    except Exception:  # the head plan reports every config problem itself, in full
        return None
    r = cfg.rollout
    return RolloutSummary(r.canary_percent, r.bake_minutes, r.error_rate_percent, r.latency_seconds)


def shown(value: Any) -> str:
    """A value for a reviewer: JSON, and a long one (a bundle, say) as its size and digest."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) <= 120:
        return text
    return f"<{len(text)} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()[:12]}>"
