"""A stack file read into a `StackConfig`: the engine's flat config map validated, and the files
it names (the Worker bundle, the query corpus) checked on disk.

`parse_config` turns the engine's flat config map (``{"booking:domain": "..."}``, every value a
string, structured values JSON-encoded, exactly what the language host receives) into the model;
`read_stack_config` does the same offline from `Pulumi.<stack>.yaml`, as bookingctl does. Neither
imports Pulumi: reading a stack file costs pydantic, not the engine's SDK.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from booking_shared.credentials import is_credential_key, looks_like_credential
from booking_shared.errors import KeyedValueError
from booking_shared.naming import NAMESPACE, SECRET_KEYS
from booking_shared.project import find_project, load_stack
from stackconfig.model import WORKER_BUNDLE_MAX_BYTES, StackConfig
from stackconfig.preview import stack_name
from stackconfig.problems import ConfigError, ConfigProblem, full_key, problems_from, shown, top_key
from stackconfig.zones import zone_plan_problems


def parse_config(
    flat: Mapping[str, Any],
    secret_keys: Iterable[str],
    *,
    stack: str,
    source: str,
    project_root: Path,
    project: str = "",
) -> StackConfig:
    """Validate the engine's flat config map for one stack and return the typed model, which
    carries `stack` and `project` (the Pulumi project's name).

    `flat` holds namespaced keys (``booking:domain``); keys of other namespaces (a provider's,
    say) are ignored. `secret_keys` names the keys the engine marks secret. `source` is the stack
    file named in errors. Raises `ConfigError` listing every problem; never echoes secret values.
    """
    secret_set = set(secret_keys)
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
    problems: list[ConfigProblem] = []

    for key in SECRET_KEYS:
        if key in raw and f"{prefix}{key}" not in secret_set:
            problems.append(ConfigProblem(key, "a plain-text value (not shown)",
                                          "a Pulumi secret (a `secure:` entry), never plain text"))
            raw[key] = ""  # already reported; keep it from being reported as missing too
    hidden = _committed_credentials(flat, secret_set, stack, source, problems)
    for key in hidden:
        raw.pop(key, None)  # never validated (a validator would echo it), never planned
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(p for p in problems_from(exc, raw, stack, source) if top_key(p.key) not in hidden)
    except KeyedValueError as exc:  # pragma: no cover - pydantic wraps these; kept for safety
        problems.append(ConfigProblem(exc.key, shown(exc.found), exc.allowed))
    else:
        if not problems:
            bundle, problem = _bundle_file(cfg.worker_bundle, project_root)
            problems += _corpus_problems(cfg.serving_queries, project_root)
            problems += zone_plan_problems(cfg, source)
            if cfg.preview is not None and stack != stack_name(cfg.preview.pr):
                problems.append(ConfigProblem("preview.pr", str(cfg.preview.pr),
                                              f"the pull request of stack {stack} (its preview section is in "
                                              f"Pulumi.{stack_name(cfg.preview.pr)}.yaml)"))
            if problem is None and not problems:
                return cfg.model_copy(update={"worker_bundle": bundle}).of_stack(stack, project)
            problems += [problem] if problem else []
    raise ConfigError(source, stack, problems)


def _bundle_file(relative: Path, project_root: Path) -> tuple[Path, ConfigProblem | None]:
    """The bundle's real path, or why it cannot be the Worker: outside the project, not a file, too big."""
    root = project_root.resolve()
    found = shown(str(relative))
    try:
        bundle = (root / relative).resolve(strict=True)
        status = bundle.stat()
    except (OSError, RuntimeError):
        return root / relative, ConfigProblem("workerBundle", found, f"a path to the Worker's ES-module bundle, "
                                                                    f"relative to {root} (no file is there)")
    if not bundle.is_relative_to(root):
        return bundle, ConfigProblem("workerBundle", f"{found}, which resolves to {bundle}",
                                     f"a file inside the project ({root}); a symlink out of it is not followed")
    if not stat.S_ISREG(status.st_mode):
        return bundle, ConfigProblem("workerBundle", found, "a regular file (the built bundle), not a folder, "
                                                            "device or pipe")
    if status.st_size > WORKER_BUNDLE_MAX_BYTES:
        return bundle, ConfigProblem("workerBundle", f"{found} of {status.st_size:,} bytes",
                                     "at most 10 MiB: Cloudflare's limit for one Worker is 10 MB compressed on the "
                                     "Workers Paid plan (3 MB on Free)")
    return bundle, None


def _corpus_problems(paths: tuple[str, ...], project_root: Path) -> list[ConfigProblem]:
    """Each booking:servingQueries entry must be a regular file inside the project."""
    root = project_root.resolve()
    problems = []
    for index, relative in enumerate(paths):
        try:
            path = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            problems.append(ConfigProblem(f"servingQueries[{index}]", shown(relative),
                                          f"a query corpus file relative to {root} (no file is there)"))
            continue
        if not path.is_relative_to(root) or not path.is_file():
            problems.append(ConfigProblem(f"servingQueries[{index}]", shown(relative),
                                          f"a regular file inside the project ({root})"))
    return problems


def _committed_credentials(flat: Mapping[str, Any], secret_keys: set[str], stack: str, source: str,
                           problems: list[ConfigProblem]) -> set[str]:
    """Report credentials committed in plain text under any key; return the booking keys holding one.

    A plain provider token (`cloudflare:apiToken`) or a credential-shaped value in an ordinary key
    (`pagesProductionBranch: sk_live_...`) would be printed by the plan and is already exposed to
    everyone who can read the repository; the value is never repeated here.
    """
    prefix = f"{NAMESPACE}:"
    hidden = set()
    for key, value in flat.items():
        name = key.removeprefix(prefix)
        if key in secret_keys or (key.startswith(prefix) and name in SECRET_KEYS):
            continue  # secrets are redacted; plain booking secrets are reported above
        rotate = "rotate the credential (it stays in the file's git history)"
        if not key.startswith(prefix) and is_credential_key(key):
            problems.append(ConfigProblem(
                key, "a plain-text value (not shown)", "a credential only as a Pulumi secret, never in plain text",
                f"remove {key} from {source} and {rotate}; the provider reads its credential from the "
                f"environment (CLOUDFLARE_API_TOKEN from the CI secret store), or set it encrypted with "
                f"`pulumi config set --secret {key} <value> --stack {stack}`"))
            continue
        kind = looks_like_credential(value)
        if kind:
            shown = name if key.startswith(prefix) else key
            problems.append(ConfigProblem(
                shown, f"what looks like {kind} (not shown)",
                "no credential in a plain config value: credentials belong only in `secure:` entries",
                f"remove the value from {full_key(shown)} in {source} and {rotate}"))
            if key.startswith(prefix):
                hidden.add(name)
    return hidden



def read_stack_config(stack: str, start: Path) -> StackConfig:
    """A stack's typed config read offline from `Pulumi.<stack>.yaml` in the project holding `start`
    (secrets stand in as placeholders), as bookingctl reads it."""
    project = find_project(start)
    settings = load_stack(project, stack)
    return parse_config(settings.flat, settings.secret_keys, stack=stack, source=settings.source,
                        project_root=project.root, project=project.name)
