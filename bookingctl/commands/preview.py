"""`bookingctl preview`: a pull request's preview stack, derived from staging's (stackconfig/preview.py).

`derive` writes `Pulumi.pr-N.yaml` and reads it back as the program would (a file it refuses is
removed again, or the previous one put back: nothing half-written stays); `up` derives it, keeps the
live previews within staging's `booking:previewCap`, runs `pulumi up` through the Automation API and
loads staging's newest backup, migrated and scrubbed (ops/previews/); `down` empties the preview's
bucket and runs `pulumi destroy`; `list` shows the preview stack files with their expiry.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from booking_shared import clock
from booking_shared.project import committed_stacks, find_project
from bookingctl.errors import UsageError
from bookingctl.options import ProjectDir
from ops.previews.engine import Engine, PulumiEngine
from ops.previews.lifecycle import preview_down, preview_up, prune
from ops.previews.stackfile import write_stack
from ops.targets import cloudflare_client
from stackconfig.files import read_stack_config
from stackconfig.preview import DEFAULT_LIFETIME_DAYS, SECRETS, pr_of, stack_name
from stackconfig.problems import ConfigError

app = typer.Typer(help="Pull-request preview stacks: derive, create (with scrubbed data), destroy, list.",
                  no_args_is_help=True)
SALT_ENV = "BOOKING_SCRUB_SALT"


def secret_env(key: str) -> str:
    """PREVIEW_PAYSTACK_SECRET_KEY for booking:paystackSecretKey: where `up` reads a test-mode key."""
    return "PREVIEW_" + "".join("_" + c if c.isupper() else c.upper() for c in key)


def make_engine(root: Path, policy_config: Path | None, *, secrets: bool = True) -> Engine:
    """The engine `up` and `down` run (tests replace it with one that applies plans to the API double).

    `up` sets the integrations' test-mode keys from PREVIEW_* variables; a missing one is refused here,
    before anything is written or created."""
    found = {key: os.environ.get(secret_env(key), "") for key in SECRETS} if secrets else {}
    missing = [secret_env(key) for key, value in found.items() if not value]
    if missing:
        raise UsageError(f"set {', '.join(missing)} to the integrations' test-mode keys (never production's); "
                         "nothing was created")
    return PulumiEngine(root, root / "policies", policy_config, found)


@app.command("derive")
def derive_command(
    pr: Annotated[int, typer.Option("--pr", help="The pull request's number.")],
    lifetime_days: Annotated[int, typer.Option(
        "--lifetime-days", help="Days until booking:preview.expires (1 to 30).")] = DEFAULT_LIFETIME_DAYS,
    project_dir: ProjectDir = None,
) -> None:
    """Write Pulumi.pr-N.yaml for pull request N from staging's stack file, checked as the program reads it."""
    project = find_project(project_dir or Path.cwd())
    cfg = write_stack(project, pr, today=clock.today(), lifetime_days=lifetime_days)
    stack = stack_name(pr)
    path = project.stack_file(stack)
    assert cfg.preview is not None
    typer.echo(f"wrote {path.name}: Worker {cfg.worker_name}, D1 {cfg.database_name}, https://{cfg.domain}, "
               f"expires {cfg.preview.expires}")
    typer.echo("next, with the preview environment's credentials (never production's):")
    typer.echo(f"  pulumi stack select --create {stack}")
    for key in SECRETS:
        typer.echo(f"  pulumi config set --secret booking:{key} \"$TEST_MODE_VALUE\" --stack {stack}")
    typer.echo(f"  pulumi up --stack {stack} --policy-pack policies")


@app.command("up")
def up_command(
    pr: Annotated[int, typer.Option("--pr", help="The pull request's number.")],
    lifetime_days: Annotated[int, typer.Option(
        "--lifetime-days", help="Days until booking:preview.expires (1 to 30).")] = DEFAULT_LIFETIME_DAYS,
    policy_config: Annotated[Path | None, typer.Option(
        "--policy-config", help="Policy config JSON for the pack (the base branch's, in CI).")] = None,
    classification: Annotated[Path | None, typer.Option(
        "--classification", help="The columns.yaml to scrub by (the base branch's, in CI; default: this "
                                 "tree's migrations/columns.yaml).")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Create or update pull request N's preview: stack file, cap, pulumi up, migrations, scrubbed data.

    Needs CLOUDFLARE_API_TOKEN (the pull-request environment's, never production's), the state
    backend's credentials as `pulumi` reads them, and BOOKING_SCRUB_SALT (a secret of at least 16
    characters). A push re-runs it: the stack is updated and the data it holds is kept.
    """
    project = find_project(project_dir or Path.cwd())
    with cloudflare_client() as client:
        result = preview_up(project, pr, engine=make_engine(project.root, policy_config), client=client,
                            salt_secret=os.environ.get(SALT_ENV, ""), today=clock.today(),
                            lifetime_days=lifetime_days, classification=classification, log=typer.echo)
    for gone in result.destroyed:
        typer.echo(f"destroyed {gone} (over the cap)")
    loaded = result.loaded
    if loaded is not None and loaded.backup is not None:
        typer.echo(f"loaded backup {loaded.backup}, scrubbed (salt {loaded.salt_id}...): "
                   f"{sum(loaded.rows.values()):,} rows in {len(loaded.rows)} tables")
    typer.echo(f"preview {result.stack}: {result.url} (expires {result.expires})")


@app.command("down")
def down_command(
    pr: Annotated[int, typer.Option("--pr", help="The pull request's number.")],
    project_dir: ProjectDir = None,
) -> None:
    """Destroy pull request N's preview: its bucket emptied, every resource deleted, the stack removed."""
    project = find_project(project_dir or Path.cwd())
    with cloudflare_client() as client:
        destroyed = preview_down(project, pr, engine=make_engine(project.root, None, secrets=False), client=client,
                                 today=clock.today(), log=typer.echo)
    if destroyed:
        typer.echo(f"preview {stack_name(pr)} destroyed")


@app.command("prune")
def prune_command(
    open_prs: Annotated[str, typer.Option(
        "--open", help="The numbers of the open pull requests, comma-separated (the workflow asks GitHub).")],
    project_dir: ProjectDir = None,
) -> None:
    """Destroy every live preview whose pull request is not open, or idle past its 30 days.

    Run by the scheduled cleanup workflow with the default branch's code: no code of a pull request
    runs with the credentials that destroy previews.
    """
    try:
        numbers = {int(n) for n in open_prs.split(",") if n.strip()}
    except ValueError:
        raise UsageError(f"--open {open_prs!r}: pull request numbers separated by commas, e.g. --open 12,15") \
            from None
    project = find_project(project_dir or Path.cwd())
    with cloudflare_client() as client:
        gone = prune(project, engine=make_engine(project.root, None, secrets=False), client=client,
                     open_prs=numbers, today=clock.today(), now=_now(), log=typer.echo)
    typer.echo(f"{len(gone)} preview(s) destroyed" + (f": {', '.join(gone)}" if gone else ""))


def _now() -> dt.datetime:
    """Midday of `clock.today()` in UTC: a preview's idle days counted as of the day the rules judge."""
    return dt.datetime.combine(clock.today(), dt.time(12), tzinfo=dt.UTC)


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
