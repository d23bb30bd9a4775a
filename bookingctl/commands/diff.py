"""`bookingctl diff`: what a change does to a stack, for pull-request review."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bookingctl import output
from bookingctl.diff import diff as compute
from bookingctl.diff import shown
from bookingctl.diff_render import key_inputs, summary_line, to_json, to_markdown
from bookingctl.errors import EXIT_CHANGES, EXIT_FAILED
from bookingctl.options import ProjectDir


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def diff(
    stack: Annotated[str, typer.Argument(help="Stack to compare.")],
    base: Annotated[str, typer.Option("--base", help="Git ref to compare the working tree with.")],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.table,
    policy_config: Annotated[Path | None, typer.Option("--policy-config", help="As for plan, both sides.")] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Desired-state diff of STACK between --base and the working tree.

    Resources added, updated, replaced and deleted with their changed inputs (secrets redacted;
    data-bearing and protected resources first, with a warning), and policy results new / fixed /
    still failing. Exit 0 no changes, 3 changes, 1 new mandatory violations, 2 usage errors.
    """

    result = compute((project_dir or Path.cwd()).resolve(), stack, base, policy_config)
    if fmt is DiffFormat.json:
        sys.stdout.write(json.dumps(to_json(result), indent=2, default=str) + "\n")
    elif fmt is DiffFormat.markdown:
        sys.stdout.write(to_markdown(result))
    else:
        for change in result.warnings:
            output.warn(change.warning or "")
        sys.stdout.write(summary_line(result) + "\n")
        if result.release:
            sys.stdout.write(result.release + "\n")
        if result.changes:
            output.print_rows("Changes", [
                {"action": c.action, "type": c.type, "name": c.name,
                 "changed": "\n".join(key_inputs(c.new_inputs) if c.action == "add" else
                                      [f"{path}: {shown(old)} -> {shown(new)}" for path, old, new in c.paths])}
                for c in result.changes], output.TABLE)
        if result.policy_new or result.policy_fixed:
            output.print_rows("Policy results this diff changes", [
                {"result": label, "level": v["level"], "policy": v["policy"],
                 "resource": v["resource"].rsplit("::", 1)[-1] if v["resource"] else "(stack)",
                 "finding": (v["message"].splitlines() or [""])[0]}
                for label, group in (("new", result.policy_new), ("fixed", result.policy_fixed)) for v in group],
                output.TABLE)
    if result.new_mandatory:
        raise typer.Exit(EXIT_FAILED)
    if result.changes:
        raise typer.Exit(EXIT_CHANGES)
