"""What runs `pulumi up` and `pulumi destroy` for a preview: the Pulumi engine, behind a small interface.

`PulumiEngine` drives the real CLI through the Automation API (`pulumi.automation`), from the project
folder and with the policy pack, so a preview stack is created exactly as `pulumi up --stack pr-N
--policy-pack policies` would. Tests give `bookingctl preview` an engine that applies the same plan to
the API double instead (tests/helpers/preview_engine.py): the CLI cannot be installed here.

Why a preview before every up: the engine evaluates stack policies only after every step of an `up`
is applied, so `up` alone would create a preview the pack forbids and report it afterwards. The
preview with the same pack fails first, with nothing changed.
Why `show_secrets=False`: the Automation API's default for `up` and `destroy` is True, which prints
decrypted secrets (the integrations' test-mode keys) into the job's log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from booking_shared.errors import OperationFailed

if TYPE_CHECKING:  # the Automation API is imported only when the real engine runs
    from pulumi import automation as auto

Log = Callable[[str], None]


class EngineError(OperationFailed):
    """The engine refused or failed an update; its own output says why (already printed)."""


@dataclass(frozen=True)
class LiveStack:
    """A stack the state backend holds: its name and when it was last updated (None: never)."""

    name: str
    last_update: dt.datetime | None


@dataclass(frozen=True)
class Held:
    """A resource a stack's state holds: its type token, the provider's id and its name (a route's
    pattern; None when it has neither), so `preview up` never deletes it as a lost create's leftover."""

    type: str
    id: str
    name: str | None


def held_name(props: Mapping[str, Any]) -> str | None:
    """The name a resource's inputs or outputs give it (`name`, or a route's `pattern`)."""
    for key in ("name", "pattern"):
        if isinstance(props.get(key), str):
            return str(props[key])
    return None


class Engine(Protocol):
    def check(self, stack: str, log: Log) -> None:
        """What `up` would do, gated by the policy pack, changing nothing (raises EngineError when refused)."""

    def up(self, stack: str, log: Log) -> None:
        """Create or update `stack` from its stack file, gated by the policy pack first."""

    def destroy(self, stack: str, log: Log) -> None:
        """Delete every resource of `stack` and remove the stack from the backend."""

    def stacks(self) -> list[LiveStack]:
        """Every stack of the project in the backend."""

    def outputs(self, stack: str) -> dict[str, Any]:
        """The stack's exported outputs as its last update left them (secret ones left out)."""

    def held(self, stack: str) -> list[Held]:
        """The resources `stack`'s state holds (none for a stack never updated)."""


class PulumiEngine:
    """The Pulumi CLI through the Automation API, run in the project folder (Pulumi.yaml, infra/)."""

    def __init__(self, project_root: Path, policy_pack: Path, policy_config: Path | None = None,
                 secrets: Mapping[str, str] | None = None) -> None:
        self.root, self.policy_pack, self.policy_config = project_root, policy_pack, policy_config
        # booking:<key> -> value, set as Pulumi secrets on the stack before each preview (the
        # integrations' test-mode keys: a derived stack file carries none).
        self.secrets = dict(secrets or {})

    def _stack(self, name: str, *, create: bool) -> auto.Stack:
        from pulumi import automation as auto

        if create:
            return auto.create_or_select_stack(stack_name=name, work_dir=str(self.root))
        return auto.select_stack(stack_name=name, work_dir=str(self.root))

    def check(self, stack: str, log: Log) -> None:
        from pulumi import automation as auto

        handle = self._stack(stack, create=True)
        configs = [str(self.policy_config)] if self.policy_config else None
        try:
            self._secrets(handle)
            handle.preview(policy_packs=[str(self.policy_pack)], policy_pack_configs=configs, on_output=log)
        except auto.CommandError as exc:
            raise EngineError(f"pulumi preview --stack {stack} failed; its output is above ({str(exc)[:500]})") \
                from exc

    def _secrets(self, handle: auto.Stack) -> None:
        from pulumi import automation as auto

        if self.secrets:
            handle.set_all_config({f"booking:{key}": auto.ConfigValue(value, secret=True)
                                   for key, value in self.secrets.items()})

    def up(self, stack: str, log: Log) -> None:
        from pulumi import automation as auto

        packs = [str(self.policy_pack)]
        configs = [str(self.policy_config)] if self.policy_config else None
        handle = self._stack(stack, create=True)
        try:
            self._secrets(handle)
            handle.preview(policy_packs=packs, policy_pack_configs=configs, on_output=log)
            handle.up(policy_packs=packs, policy_pack_configs=configs, on_output=log, show_secrets=False)
        except auto.CommandError as exc:
            raise EngineError(f"pulumi up --stack {stack} failed; its output is above ({str(exc)[:500]})") from exc

    def destroy(self, stack: str, log: Log) -> None:
        from pulumi import automation as auto

        try:
            self._stack(stack, create=False).destroy(on_output=log, show_secrets=False, remove=True)
        except auto.CommandError as exc:
            raise EngineError(f"pulumi destroy --stack {stack} failed; its output is above ({str(exc)[:500]})") \
                from exc

    def outputs(self, stack: str) -> dict[str, Any]:
        return {name: out.value for name, out in self._stack(stack, create=False).outputs().items() if not out.secret}

    def held(self, stack: str) -> list[Held]:
        # The checkpoint as `pulumi stack export` writes it (apitype.DeploymentV3): `resources`, each with
        # `urn`, `custom`, `type`, `id`, `inputs`, `outputs`. A create whose answer was lost is in none of
        # them (at most in `pending_operations`): exactly what the caller must not mistake for held.
        deployment = self._stack(stack, create=True).export_stack().deployment or {}
        found = []
        for r in deployment.get("resources") or []:
            if not isinstance(r, dict) or not r.get("custom"):
                continue
            props = {**(r.get("inputs") or {}), **(r.get("outputs") or {})}
            found.append(Held(str(r.get("type", "")), str(r.get("id") or ""), held_name(props)))
        return found

    def stacks(self) -> list[LiveStack]:
        from pulumi import automation as auto

        workspace = auto.LocalWorkspace(work_dir=str(self.root))
        return [LiveStack(s.name, s.last_update) for s in workspace.list_stacks()]
