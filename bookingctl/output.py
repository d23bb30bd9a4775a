"""Owns the consoles and renders results as a table, JSON or Markdown.

Everything printed here comes from redacted data: `Plan.resources[*].inputs` and `Plan.outputs`
have had every secret replaced before they reach this module.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from booking_shared.text import printable

if TYPE_CHECKING:  # only names: importing the gate or planner would load grpc and pulumi at start-up
    from bookingctl.gate import GateResult, Violation
    from bookingctl.planner import Plan, PlannedResource


# Formats by name: each command's own enum says which of them it accepts (a StrEnum member equals
# its name, so either can be passed here).
TABLE, JSON, MARKDOWN, SARIF = "table", "json", "markdown", "sarif"


def console_for(stream: Any) -> Console:
    # Built per call so output follows sys.stdout/sys.stderr as they are now (tests swap them).
    # Off a terminal (CI logs, pipes) rich would squeeze tables into 80 columns, so there it gets
    # 200, unless COLUMNS says how wide the reader's window is (`COLUMNS=$COLUMNS bookingctl ... |
    # less`): with width None rich reads COLUMNS itself.
    columns = os.environ.get("COLUMNS", "")
    wide_enough = stream.isatty() or (columns.isdigit() and int(columns) > 0)
    return Console(file=stream, width=None if wide_enough else 200, highlight=False)

_LONG = 60
# Inputs every resource repeats; they add nothing to a reviewer's reading of one row.
_NOISE = frozenset({"accountId"})


def _lines(message: str) -> str:
    # Messages quote database and API text (a slug another writer stored): escape sequences spelled out.
    return "\n".join(printable(line, None) for line in message.split("\n"))


def error(message: str) -> None:
    console_for(sys.stderr).print(Text.assemble(("error: ", "bold red"), _lines(message)), soft_wrap=True)


def info(message: str) -> None:
    """Progress and status lines: stderr, so stdout stays machine-readable."""
    console_for(sys.stderr).print(Text(_lines(message)), soft_wrap=True)


def warn(message: str) -> None:
    console_for(sys.stderr).print(Text.assemble(("warning: ", "yellow"), _lines(message)), soft_wrap=True)


# A command's --progress/--quiet (None: neither given), set once by the command (`set_progress`), so
# every step it reports follows the flag without threading it through each call.
_PROGRESS: ContextVar[bool | None] = ContextVar("progress", default=None)


def set_progress(enabled: bool | None) -> None:
    """Record the command's --progress (True) / --quiet (False) / neither (None)."""
    _PROGRESS.set(enabled)


def progress_wanted(enabled: bool | None = None) -> bool:
    """Whether to report progress: as asked here, else as the command's flag asks, else only on a terminal."""
    if enabled is None:
        enabled = _PROGRESS.get()
    return sys.stderr.isatty() if enabled is None else enabled


def progress_log(enabled: bool | None = None) -> Callable[[str], None]:
    """Where long work reports each step: stderr when asked, or by default when stderr is a terminal."""
    return info if progress_wanted(enabled) else (lambda _: None)


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


def gate_summary(gate: GateResult) -> str:
    verdict = "PASS" if gate.passed else "FAIL"
    advisory = len(gate.violations) - len(gate.mandatory)
    lowered = ""
    if gate.downgrades:
        # In the verdict line itself, so every format shows which policies the config weakened.
        lowered = "; lowered by the policy config: " + ", ".join(f"{d.policy} {d.was}→{d.now}" for d in gate.downgrades)
    return (f"policy gate: {verdict}: {len(gate.mandatory)} mandatory, {advisory} advisory violation(s) "
            f"({len(gate.policies)} policies of {gate.pack} {gate.version}, {gate.seconds:.2f} s){lowered}")


def _resource_label(violation: Violation) -> str:
    return violation.resource.rsplit("::", 1)[-1] if violation.resource else "(stack)"


def plan_json(plan: Plan, gate: GateResult | None = None) -> str:
    data = plan.to_dict()
    if gate is not None:
        data["policyGate"] = gate.summary()
        data["violations"] = [v.to_dict() for v in gate.violations]
    return json.dumps(data, indent=2, sort_keys=False)


def gate_markdown(gate: GateResult) -> list[str]:
    icon = "✅" if gate.passed else "❌"
    lines = [f"**{icon} {gate_summary(gate)}**", ""]
    if gate.violations:
        lines += ["| Level | Policy | Resource | Finding |", "| --- | --- | --- | --- |"]
        ordered = sorted(gate.violations, key=lambda v: (v.level != "mandatory", v.policy))
        for v in ordered:
            finding = md_cell(v.message).replace("\n", "<br>")
            lines.append(f"| {v.level} | `{v.policy}` | `{_resource_label(v)}` | {finding} |")
        lines.append("")
    return lines


def plan_markdown(plan: Plan, gate: GateResult | None = None) -> str:
    depths = _depths(plan)
    lines = [f"### Offline plan: `{plan.stack}`", ""]
    if gate is not None:
        # Summary first: a reviewer reads the verdict before the resource list.
        lines += gate_markdown(gate)
        lines += ["<details><summary>" + _summary(plan) + "</summary>", ""]
    else:
        lines += [_summary(plan), ""]
    lines += ["| Type | Name | Protect | Key inputs |", "| --- | --- | --- | --- |"]
    for r in plan.resources:
        name = "&nbsp;&nbsp;" * depths[r.urn] + f"`{r.name}`"
        inputs = md_cell(key_inputs(r)).replace("\n", "<br>")
        lines.append(f"| `{r.type}` | {name} | {'yes' if r.protect else ''} | {inputs} |")
    lines += ["", "| Output | Value |", "| --- | --- |"]
    lines += [f"| `{k}` | {md_cell(_short(v))} |" for k, v in plan.outputs.items()]
    if plan.warnings:
        lines += ["", "**Warnings**", ""] + [f"- {md_cell(w)}" for w in plan.warnings]
    if gate is not None:
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def print_plan(plan: Plan, fmt: str, gate: GateResult | None = None, sarif_text: str | None = None) -> None:
    for message in plan.warnings:
        warn(message)
    if fmt == JSON:
        sys.stdout.write(plan_json(plan, gate) + "\n")
        return
    if fmt == MARKDOWN:
        sys.stdout.write(plan_markdown(plan, gate))
        return
    if fmt == SARIF:
        sys.stdout.write((sarif_text or "") + "\n")
        if gate is not None:
            console_for(sys.stderr).print(Text(gate_summary(gate)))
        return
    depths = _depths(plan)
    console = console_for(sys.stdout)
    # A narrow terminal gets the type's class name (the full token is in --format json/markdown).
    wide = console.width >= 120
    console.print(Text(_summary(plan)))
    names = ["  " * depths[r.urn] + r.name for r in plan.resources]
    kinds = [r.type if wide else r.type.rsplit(":", 1)[-1] for r in plan.resources]
    # Borders and padding of four columns, and the Protect column.
    left = console.width - max(map(len, names), default=4) - max(map(len, kinds), default=4) - 13 - 7
    if left < _INPUTS_MIN:
        _print_resource_list(console, plan, names, kinds)
    else:
        _print_resource_table(console, plan, names, kinds)
    outputs = Table(title="Stack outputs", title_justify="left")
    outputs.add_column("Output")
    outputs.add_column("Value", overflow="fold")
    for k, v in plan.outputs.items():
        outputs.add_row(Text(k), Text(_short(v)))
    console.print(outputs)
    if gate is not None:
        print_gate(console, gate)


# Narrower than this, the inputs column would break values inside words (`deployed` as `de` /
# `ployed`); the resources are then listed one under another, each input on its own line.
_INPUTS_MIN = 40


def _print_resource_list(console: Console, plan: Plan, names: list[str], kinds: list[str]) -> None:
    for r, name, kind in zip(plan.resources, names, kinds, strict=True):
        head = Text.assemble((name, "bold"), f"  {kind}", ("  protected" if r.protect else ""))
        console.print(head)
        indent = len(name) - len(name.lstrip()) + 4
        for line in key_inputs(r).splitlines():
            # Padding, not leading spaces: a long value's wrapped lines keep the indent too.
            console.print(Padding(Text(line), (0, 0, 0, indent), expand=False))


def _print_resource_table(console: Console, plan: Plan, names: list[str], kinds: list[str]) -> None:
    table = Table(show_lines=True)
    # Names and types are never folded: the inputs column takes what width is left.
    table.add_column("Name", min_width=max(map(len, names), default=4), no_wrap=True)
    table.add_column("Type", min_width=max(map(len, kinds), default=4), no_wrap=True)
    table.add_column("Protect", justify="center")
    table.add_column("Key inputs (secrets redacted)", overflow="fold")
    for r, name, kind in zip(plan.resources, names, kinds, strict=True):
        # Text, not str: rich would read "[secret]" as a markup tag and drop it.
        table.add_row(Text(name), Text(kind), "yes" if r.protect else "", Text(key_inputs(r)))
    console.print(table)


def print_gate(console: Console, gate: GateResult) -> None:
    if gate.violations:
        table = Table(title="Policy violations", title_justify="left", show_lines=True)
        table.add_column("Level")
        table.add_column("Policy", overflow="fold")
        table.add_column("Resource", overflow="fold")
        table.add_column("Finding", overflow="fold")
        for v in sorted(gate.violations, key=lambda v: (v.level != "mandatory", v.policy)):
            style = "bold red" if v.level == "mandatory" else "yellow"
            table.add_row(Text(v.level, style=style), Text(v.policy), Text(_resource_label(v)), Text(v.message))
        console.print(table)
    console.print(Text(gate_summary(gate), style="bold green" if gate.passed else "bold red"))


@contextmanager
def progress_reporter(title: str) -> Iterator[Callable[[str, int, int], None]]:
    """Progress on stderr; yields the (what, done, total) callback operations take.

    On a terminal a rich bar. Off one (CI logs, pipes) only with --progress, as plain lines: one when
    a step starts and one each further tenth of its total (or each 30 s of a step with no total, an
    export being polled), so a 15-minute export shows it is alive without flooding the log.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not progress_wanted():
        yield lambda _what, _done, _total: None
        return
    if not sys.stderr.isatty():
        yield _plain_progress(title)
        return

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console_for(sys.stderr), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def report(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"{title}: {what}", total=total or None)
            bar.update(tasks[what], completed=done, total=total or None)

        yield report


def _plain_progress(title: str) -> Callable[[str, int, int], None]:
    import time

    last: dict[str, tuple[int, float]] = {}  # step -> (tenth reported, when)

    def report(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        tenth = done * 10 // total if total else 0
        seen = last.get(what)
        if seen is not None and (tenth <= seen[0] if total else now - seen[1] < 30):
            return
        last[what] = (tenth, now)
        count = f"{done:,}/{total:,} ({tenth * 10} %)" if total else f"{done:,}"
        info(f"{title}: {what}: {count}")

    return report


def print_rows(title: str, rows: list[dict[str, Any]], fmt: str) -> None:
    """Query results as a table, or as a JSON list."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    console = console_for(sys.stdout)
    console.print(Text(f"{title} ({len(rows)})"))  # not a table title: rich pads those to the table's width
    table = Table()
    columns = list(rows[0]) if rows else []
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        # Cells are database text (a tenant's or customer's name): escape sequences spelled out, never sent.
        table.add_row(*(Text("" if row[c] is None else printable(str(row[c]), None)) for c in columns))
    if columns:
        console.print(table)
