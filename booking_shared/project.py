"""Reads the Pulumi project file and a stack's config file the way the Pulumi CLI does.

The result is the flat config map the engine hands a program (``{"booking:domain": "..."}``,
strings throughout, structured values JSON-encoded) plus the set of secret keys. Secret values
cannot be decrypted offline, so each `secure:` entry stands in as `SECRET_PLACEHOLDER`.

Files are read through `booking_shared.safeyaml` (size cap, duplicate keys refused as the Pulumi CLI
does, bounded aliases). What the CLI would read differently from PyYAML, and what no `pulumi up`
could decrypt, is refused here with the key and line, before any program runs; so is a hostname
another environment's committed stack file already serves. The policy pack reads the other stacks
through this module too (`other_stacks`), so both judge hostnames from the same files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from booking_shared import safeyaml
from booking_shared.credentials import is_credential_key, looks_like_ciphertext
from booking_shared.errors import InputError
from booking_shared.hostnames import declared_hostnames, declared_zones, environment_of, saas_zone
from booking_shared.naming import NAMESPACE, SECRET_KEYS

SECRET_PLACEHOLDER = "[secret]"
# Stack files hold a few dozen keys (about 120 KB with 1,200 tenants); more is a mistake or an attack.
STACK_FILE_MAX_BYTES = 1024 * 1024


class ProjectError(InputError):
    """The project or stack files cannot be read; the message names the file and the fix."""


# Pulumi's own rule for a stack's name; anything else could never be a stack, and the name becomes
# part of paths (Pulumi.<stack>.yaml, backups/<stack>/), where `..` or `/` would leave the project.
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def check_stack_name(stack: str) -> str:
    """`stack`, if it can name a Pulumi stack; otherwise a ProjectError saying what can."""
    if not _STACK_NAME.fullmatch(stack) or set(stack) == {"."}:
        raise ProjectError(f"stack name {stack!r}: use letters, digits, '-', '_' and '.' (at most 100 "
                           "characters), as Pulumi does; e.g. --stack staging")
    return stack


@dataclass(frozen=True)
class StackProblem:
    """One bad entry of a stack file: never carries a secret's value."""

    key: str
    line: int | None
    found: str
    allowed: str
    fix: str


class StackFileError(ProjectError):
    """A stack file's entries cannot be handed to the program; `problems` lists every one."""

    def __init__(self, source: str, stack: str, problems: list[StackProblem]) -> None:
        self.source, self.stack, self.problems = source, stack, problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s) in stack '{self.stack}':"]
        for p in self.problems:
            where = f" (line {p.line})" if p.line else ""
            lines.append(f"  - {p.key}{where}: found {p.found}; expected {p.allowed}.")
            lines.append(f"    fix: {p.fix}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    main: Path

    def stack_file(self, stack: str) -> Path:
        return self.root / f"Pulumi.{check_stack_name(stack)}.yaml"

    def stacks(self) -> list[str]:
        return committed_stacks(self.root)


@dataclass(frozen=True)
class StackSettings:
    """A stack's config as the engine would pass it, plus what the offline plan had to stand in."""

    stack: str
    source: str
    flat: dict[str, str]
    secret_keys: frozenset[str]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OtherStack:
    """Another committed stack, as far as hostname ownership goes."""

    stack: str
    source: str
    environment: str
    hostnames: dict[str, str]  # hostname -> the key declaring it
    # zone id -> the key naming it (booking:zoneId, tenants' zoneId, booking:saas.zoneId): a SaaS
    # zone's `*/*` route reaches every hostname of its zone, so SaaS zones are judged by zone.
    zones: dict[str, str] = field(default_factory=dict)


def committed_stacks(root: Path) -> list[str]:
    """The stacks with a `Pulumi.<stack>.yaml` in the project folder."""
    names = (p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
    return sorted(n for n in names if _STACK_NAME.fullmatch(n))


def find_project(start: Path) -> Project:
    """Find `Pulumi.yaml` in `start` or its parents, as the Pulumi CLI does."""
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / "Pulumi.yaml").is_file():
            return _read_project(folder / "Pulumi.yaml")
    raise ProjectError(f"no Pulumi.yaml in {start.resolve()} or any parent folder; "
                       "run bookingctl from the repository (or pass --project-dir)")


def _read_project(path: Path) -> Project:
    data = _load_yaml(path).data
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


def _load_yaml(path: Path) -> safeyaml.Document:
    try:
        document = safeyaml.load(path, max_bytes=STACK_FILE_MAX_BYTES)
    except safeyaml.YamlError as exc:
        listed = exc.problems[0] if len(exc.problems) == 1 else "\n  - " + "\n  - ".join(exc.problems)
        raise ProjectError(f"{path.name}: {listed}") from exc
    if document.data is None:
        return safeyaml.Document({}, [])
    if not isinstance(document.data, dict):
        raise ProjectError(f"{path.name}: expected a YAML mapping at the top level")
    return document


def _display_key(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _is_secret_key(key: str) -> bool:
    return key in {f"{NAMESPACE}:{name}" for name in SECRET_KEYS} or is_credential_key(key)


def _typed_problem(typed: safeyaml.TypedScalar, stack: str) -> StackProblem:
    key = _display_key(typed.path[1:])
    top = str(typed.path[1])
    secret = _is_secret_key(top) or typed.kind.startswith("binary")
    shown = "" if secret or not typed.text else f" ({typed.text})"
    example = f'{key}: "{typed.text}"' if not secret and typed.text and len(typed.path) == 2 else None
    if example:
        fix = f"quote it, e.g. {example}"
    elif _is_secret_key(top):
        fix = f"set it encrypted instead: `pulumi config set --secret {top} <value> --stack {stack}`"
    else:
        fix = f"quote the value of {key}"
    return StackProblem(key, typed.line, f"an unquoted value{shown} that YAML reads as {typed.kind}",
                        "text: quoted, so the Pulumi CLI and this tool read the same characters", fix)


def _read_stack(path: Path, stack: str) -> tuple[dict[str, str], set[str], list[StackProblem]]:
    """The engine's flat config of one stack file, its secret keys and what the CLI would not accept."""
    document = _load_yaml(path)
    config = document.data.get("config") or {}
    if not isinstance(config, dict):
        raise ProjectError(f"{path.name}: `config` must be a mapping of key: value")
    problems = [_typed_problem(t, stack) for t in document.typed if t.path[:1] == ("config",) and len(t.path) > 1]
    if problems:
        return {}, set(), problems  # values are not text yet: nothing below could be trusted

    flat: dict[str, str] = {}
    secret_keys: set[str] = set()
    for raw_key, value in config.items():
        key = str(raw_key)
        if isinstance(value, dict) and set(value) == {"secure"}:
            if not looks_like_ciphertext(value["secure"]):
                problems.append(StackProblem(
                    key, None, "a `secure:` value that is not Pulumi ciphertext (not shown)",
                    "the ciphertext `pulumi config set --secret` writes (`v1:<nonce>:<data>` with a passphrase "
                    "or KMS secrets provider, base64 from Pulumi Cloud); `pulumi up` could not decrypt this",
                    f"delete the entry (rotate the credential if it was a real one pasted in), then run "
                    f"`pulumi config set --secret {key} <value> --stack {stack}`"))
            flat[key] = SECRET_PLACEHOLDER
            secret_keys.add(key)
        elif isinstance(value, str):
            flat[key] = value
        else:
            # What the CLI does: scalars become their JSON text, objects and lists JSON documents.
            flat[key] = json.dumps(value)
    return flat, secret_keys, problems


def other_stacks(root: Path, stack: str) -> tuple[list[OtherStack], list[str]]:
    """Every other committed stack's environment and hostnames, and the files that cannot be read.

    The policy pack treats an unreadable file as a violation (it cannot prove isolation); the
    config check leaves it to the pack and to that stack's own plan.
    """
    found, unreadable = [], []
    for name in committed_stacks(root):
        if name == stack:
            continue
        path = root / f"Pulumi.{name}.yaml"
        try:
            flat, _, problems = _read_stack(path, name)
        except ProjectError as exc:
            unreadable.append(" ".join(line.strip() for line in str(exc).splitlines()))
            continue
        if problems:
            unreadable.append(f"{path.name}: {len(problems)} problem(s), e.g. {problems[0].key}: {problems[0].found}")
            continue
        found.append(OtherStack(name, path.name, environment_of(flat, name), declared_hostnames(flat),
                                declared_zones(flat)))
    return found, unreadable


def _foreign_hostnames(root: Path, stack: str, source: str, flat: dict[str, str]) -> list[StackProblem]:
    """This stack's hostnames that a committed stack of another environment serves."""
    mine = declared_hostnames(flat)
    environment = environment_of(flat, stack)
    problems = []
    for other in other_stacks(root, stack)[0]:
        if other.environment == environment:
            continue  # two stacks of one environment (regions, say) may share; environments may not
        for hostname in sorted(set(mine) & set(other.hostnames)):
            problems.append(StackProblem(
                mine[hostname], None,
                f"'{hostname}', which {other.source} ({other.environment}) serves as {other.hostnames[hostname]}",
                f"a hostname no other environment's stack serves: a {environment} route, DNS record or Pages "
                f"domain on it would take {other.environment}'s traffic (and its users' data) into {environment}",
                f"give stack {stack} its own hostname in {source} (e.g. staging.<domain> for staging)"))
        zone = saas_zone(flat)
        if zone is not None and zone in other.zones:
            problems.append(StackProblem(
                f"{NAMESPACE}:saas.zoneId", None,
                f"'{zone}', which {other.source} ({other.environment}) uses as {other.zones[zone]}",
                f"a SaaS zone no other environment's stack uses: its `*/*` Worker route sends every hostname of "
                f"the zone, and every custom hostname on it, to this {environment} Worker, so {other.environment}'s "
                f"traffic would reach {environment}",
                f"give stack {stack} a SaaS zone of its own in {source} (a separate zone per environment)"))
    return problems


def load_stack(project: Project, stack: str) -> StackSettings:
    """Load `Pulumi.<stack>.yaml` into the engine's flat config form."""
    path = project.stack_file(stack)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise ProjectError(f"unknown stack {stack!r}: {path.name} does not exist in {project.root}. "
                           f"Stacks here: {known}. Create one with `pulumi stack init {stack}` "
                           f"and set its booking:* keys.")
    flat, secret_keys, problems = _read_stack(path, stack)
    if not problems:
        problems = _foreign_hostnames(project.root, stack, path.name, flat)
    if problems:
        raise StackFileError(path.name, stack, problems)

    warnings = []
    for name in SECRET_KEYS:
        key = f"{NAMESPACE}:{name}"
        if key not in flat:
            # The offline plan still shows every resource; a real `pulumi up` refuses to run
            # until the secret is set, because the program requires it.
            flat[key] = SECRET_PLACEHOLDER
            secret_keys.add(key)
            warnings.append(f"{key} is not set in {path.name}: the plan uses a placeholder; set it with "
                            f"`pulumi config set --secret {key} <value> --stack {stack}`")
    return StackSettings(stack=stack, source=path.name, flat=flat,
                         secret_keys=frozenset(secret_keys), warnings=warnings)

