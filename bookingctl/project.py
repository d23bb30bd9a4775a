"""Reads the Pulumi project file and a stack's config file the way the Pulumi CLI does.

The result is the flat config map the engine hands a program (``{"booking:domain": "..."}``,
strings throughout, structured values JSON-encoded) plus the set of secret keys. Secret values
cannot be decrypted offline, so each `secure:` entry stands in as `SECRET_PLACEHOLDER`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from booking_shared.naming import NAMESPACE, SECRET_KEYS

SECRET_PLACEHOLDER = "[secret]"


class ProjectError(Exception):
    """The project or stack files cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    main: Path

    def stack_file(self, stack: str) -> Path:
        return self.root / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.root.glob("Pulumi.*.yaml"))


@dataclass(frozen=True)
class StackSettings:
    """A stack's config as the engine would pass it, plus what the offline plan had to stand in."""

    stack: str
    source: str
    flat: dict[str, str]
    secret_keys: frozenset[str]
    warnings: list[str] = field(default_factory=list)


def find_project(start: Path) -> Project:
    """Find `Pulumi.yaml` in `start` or its parents, as the Pulumi CLI does."""
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / "Pulumi.yaml").is_file():
            return _read_project(folder / "Pulumi.yaml")
    raise ProjectError(f"no Pulumi.yaml in {start.resolve()} or any parent folder; "
                       "run bookingctl from the repository (or pass --project-dir)")


def _read_project(path: Path) -> Project:
    data = _load_yaml(path)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{path}: the project file has no `name`")
    runtime = data.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise ProjectError(f"{path}: runtime is {runtime_name!r}; this tool plans Python programs only")
    main = path.parent / str(data.get("main") or ".")
    if not (main / "__main__.py").is_file():
        raise ProjectError(f"{path}: `main: {data.get('main')}` has no __main__.py")
    return Project(root=path.parent, name=name, main=main)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path.name}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProjectError(f"{path.name}: expected a YAML mapping at the top level")
    return data


def load_stack(project: Project, stack: str) -> StackSettings:
    """Load `Pulumi.<stack>.yaml` into the engine's flat config form."""
    path = project.stack_file(stack)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise ProjectError(f"unknown stack {stack!r}: {path.name} does not exist in {project.root}. "
                           f"Stacks here: {known}. Create one with `pulumi stack init {stack}` "
                           f"and set its booking:* keys.")
    data = _load_yaml(path)
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ProjectError(f"{path.name}: `config` must be a mapping of key: value")

    flat: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in config.items():
        key = str(key)
        if isinstance(value, dict) and set(value) == {"secure"}:
            flat[key] = SECRET_PLACEHOLDER
            secret_keys.add(key)
        elif isinstance(value, str):
            flat[key] = value
        else:
            # What the CLI does: scalars become their JSON text, objects and lists JSON documents.
            flat[key] = json.dumps(value)

    warnings = []
    for name in SECRET_KEYS:
        key = f"{NAMESPACE}:{name}"
        if key not in flat:
            # The offline plan still shows every resource; a real `pulumi up` refuses to run
            # until the secret is set, because the program requires it.
            flat[key] = SECRET_PLACEHOLDER
            secret_keys.add(key)
            warnings.append(f"{key} is not set in {path.name}: the plan uses a placeholder; set it with "
                            f"`pulumi config set --secret {key} <value> --stack {stack}` before `pulumi up`")
    return StackSettings(stack=stack, source=path.name, flat=flat,
                         secret_keys=frozenset(secret_keys), warnings=warnings)
