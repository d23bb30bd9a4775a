"""Owns the consoles and renders results as a table, JSON or Markdown.

Everything printed here comes from redacted data: `Plan.resources[*].inputs` and `Plan.outputs`
have had every secret replaced before they reach this module.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bookingctl.planner import Plan, PlannedResource


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def _console(stream: Any) -> Console:
    # Built per call so output follows sys.stdout/sys.stderr as they are now (tests swap them).
    # Off a terminal (CI logs, pipes) rich would squeeze tables into 80 columns.
    return Console(file=stream, width=None if stream.isatty() else 200, highlight=False)

_LONG = 60
# Inputs every resource repeats; they add nothing to a reviewer's reading of one row.
_NOISE = frozenset({"accountId"})


def error(message: str) -> None:
    _console(sys.stderr).print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


def warn(message: str) -> None:
    _console(sys.stderr).print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= _LONG else f"<{len(value)} chars>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return json.dumps(value)


def key_inputs(resource: PlannedResource) -> str:
    """One line per input a reviewer cares about, long values shortened."""
    if not resource.custom:
        return "(component)"
    return "\n".join(f"{k}: {_short(v)}" for k, v in resource.inputs.items() if k not in _NOISE)


def _depths(plan: Plan) -> dict[str, int]:
    by_urn = {r.urn: r for r in plan.resources}
    depths: dict[str, int] = {}
    for r in plan.resources:
        depth, parent = 0, r.parent
        while parent in by_urn:
            depth, parent = depth + 1, by_urn[parent].parent
        depths[r.urn] = depth
    return depths


def _summary(plan: Plan) -> str:
    custom = len(plan.custom_resources())
    protected = sum(1 for r in plan.resources if r.protect)
    return (f"stack {plan.stack} (project {plan.project}): {len(plan.resources)} resources, "
            f"{custom} cloud resources, {protected} protected")


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, sort_keys=False)


def plan_markdown(plan: Plan) -> str:
    depths = _depths(plan)
    lines = [f"### Offline plan: `{plan.stack}`", "", _summary(plan), ""]
    lines += ["| Type | Name | Protect | Key inputs |", "| --- | --- | --- | --- |"]
    for r in plan.resources:
        name = "&nbsp;&nbsp;" * depths[r.urn] + f"`{r.name}`"
        inputs = _md_cell(key_inputs(r)).replace("\n", "<br>")
        lines.append(f"| `{r.type}` | {name} | {'yes' if r.protect else ''} | {inputs} |")
    lines += ["", "| Output | Value |", "| --- | --- |"]
    lines += [f"| `{k}` | {_md_cell(_short(v))} |" for k, v in plan.outputs.items()]
    if plan.warnings:
        lines += ["", "**Warnings**", ""] + [f"- {_md_cell(w)}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def print_plan(plan: Plan, fmt: Format) -> None:
    for message in plan.warnings:
        warn(message)
    if fmt is Format.json:
        sys.stdout.write(plan_json(plan) + "\n")
        return
    if fmt is Format.markdown:
        sys.stdout.write(plan_markdown(plan))
        return
    depths = _depths(plan)
    table = Table(title=Text(_summary(plan)), title_justify="left", show_lines=True)
    table.add_column("Type", overflow="fold")
    table.add_column("Name", overflow="fold")
    table.add_column("Protect", justify="center")
    table.add_column("Key inputs (secrets redacted)", overflow="fold")
    for r in plan.resources:
        # Text, not str: rich would read "[secret]" as a markup tag and drop it.
        table.add_row(Text(r.type), Text("  " * depths[r.urn] + r.name), "yes" if r.protect else "",
                      Text(key_inputs(r)))
    console = _console(sys.stdout)
    console.print(table)
    outputs = Table(title="Stack outputs", title_justify="left")
    outputs.add_column("Output")
    outputs.add_column("Value", overflow="fold")
    for k, v in plan.outputs.items():
        outputs.add_row(Text(k), Text(_short(v)))
    console.print(outputs)
