"""`bookingctl preview`: a pull request's preview stack, derived from staging's (stackconfig/preview.py).

`derive` writes `Pulumi.pr-N.yaml` and reads it back as the program would (a file it refuses is
removed again, or the previous one put back: nothing half-written stays); `list` shows the preview
stack files with their expiry. Creating and destroying the preview's resources is `pulumi up` / `pulumi destroy` on that
stack (issue #26: the command that runs them and loads scrubbed data is not built yet).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from booking_shared import clock, safeyaml
from booking_shared.project import STACK_FILE_MAX_BYTES, committed_stacks, find_project
from bookingctl.options import ProjectDir
from stackconfig.files import read_stack_config
from stackconfig.preview import DEFAULT_LIFETIME_DAYS, SECRETS, PreviewError, derive, pr_of, stack_name
from stackconfig.problems import ConfigError

app = typer.Typer(help="Pull-request preview stacks: derive one from staging, list them.", no_args_is_help=True)

_HEADER = ("# Preview stack of pull request {pr}, derived from Pulumi.staging.yaml by `bookingctl preview derive`\n"
           "# on {today}; derive again rather than edit. No secret is copied: set the integrations' test-mode keys\n"
           "# with `pulumi config set --secret` (never production's).\n")


@app.command("derive")
def derive_command(
    pr: Annotated[int, typer.Option("--pr", help="The pull request's number.")],
    lifetime_days: Annotated[int, typer.Option(
        "--lifetime-days", help="Days until booking:preview.expires (1 to 30).")] = DEFAULT_LIFETIME_DAYS,
    project_dir: ProjectDir = None,
) -> None:
    """Write Pulumi.pr-N.yaml for pull request N from staging's stack file, checked as the program reads it."""
    project = find_project(project_dir or Path.cwd())
    staging = safeyaml.load(project.stack_file("staging"), max_bytes=STACK_FILE_MAX_BYTES).data
    if not isinstance(staging, dict) or not isinstance(staging.get("config"), dict):
        raise PreviewError("Pulumi.staging.yaml has no `config:` mapping to derive a preview from")
    today = clock.today()
    config = derive(staging["config"], pr, today=today, lifetime_days=lifetime_days)
    stack = stack_name(pr)
    path = project.stack_file(stack)
    text = _HEADER.format(pr=pr, today=today.isoformat()) + yaml.safe_dump({"config": config}, sort_keys=False)
    existed = path.read_bytes() if path.is_file() else None
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    try:
        cfg = read_stack_config(stack, project.root)
    except BaseException:
        # Whatever refused it (the model, another stack's hostname, Ctrl-C): put back what was there
        # (a push re-derives an existing preview), or remove the new file.
        if existed is None:
            path.unlink()
        else:
            path.write_bytes(existed)
        raise
    assert cfg.preview is not None
    typer.echo(f"wrote {path.name}: Worker {cfg.worker_name}, D1 {cfg.database_name}, https://{cfg.domain}, "
               f"expires {cfg.preview.expires}")
    typer.echo("next, with the preview environment's credentials (never production's):")
    typer.echo(f"  pulumi stack select --create {stack}")
    for key in SECRETS:
        typer.echo(f"  pulumi config set --secret booking:{key} \"$TEST_MODE_VALUE\" --stack {stack}")
    typer.echo(f"  pulumi up --stack {stack} --policy-pack policies")


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of lines.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """The preview stack files of this checkout (Pulumi.pr-N.yaml), each with its expiry."""
    project = find_project(project_dir or Path.cwd())
    today = clock.today()
    found: list[dict[str, Any]] = []
    for stack in committed_stacks(project.root):
        pr = pr_of(stack)
        if pr is None:
            continue
        try:
            cfg = read_stack_config(stack, project.root)
        except ConfigError as exc:
            found.append({"stack": stack, "pr": pr, "expires": None, "expired": None, "problem": str(exc)})
            continue
        expires = cfg.preview.expires if cfg.preview else None
        found.append({"stack": stack, "pr": pr, "expires": expires.isoformat() if expires else None,
                      "expired": expires < today if expires else None, "url": f"https://{cfg.domain}"})
    found.sort(key=lambda p: p["pr"])
    if as_json:
        typer.echo(json.dumps({"today": today.isoformat(), "previews": found}, indent=2))
        return
    if not found:
        typer.echo("no preview stacks (Pulumi.pr-N.yaml) in this checkout")
    for p in found:
        state = "unreadable: " + p["problem"] if p.get("problem") else (
            f"expired {p['expires']}" if p["expired"] else f"expires {p['expires']}")
        typer.echo(f"{p['stack']}  {p.get('url', '')}  {state}")
