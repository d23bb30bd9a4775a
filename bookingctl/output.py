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
    from ops.backups.backups import Manifest
    from ops.database.migrations import MigrationState
    from ops.observation.doctor import Report as DoctorReport


# Formats by name: each command's own enum says which of them it accepts (a StrEnum member equals
# its name, so either can be passed here).
TABLE, JSON, MARKDOWN, SARIF = "table", "json", "markdown", "sarif"


def _console(stream: Any) -> Console:
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
    _console(sys.stderr).print(Text.assemble(("error: ", "bold red"), _lines(message)), soft_wrap=True)


def info(message: str) -> None:
    """Progress and status lines: stderr, so stdout stays machine-readable."""
    _console(sys.stderr).print(Text(_lines(message)), soft_wrap=True)


def warn(message: str) -> None:
    _console(sys.stderr).print(Text.assemble(("warning: ", "yellow"), _lines(message)), soft_wrap=True)


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
            finding = _md_cell(v.message).replace("\n", "<br>")
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
        inputs = _md_cell(key_inputs(r)).replace("\n", "<br>")
        lines.append(f"| `{r.type}` | {name} | {'yes' if r.protect else ''} | {inputs} |")
    lines += ["", "| Output | Value |", "| --- | --- |"]
    lines += [f"| `{k}` | {_md_cell(_short(v))} |" for k, v in plan.outputs.items()]
    if plan.warnings:
        lines += ["", "**Warnings**", ""] + [f"- {_md_cell(w)}" for w in plan.warnings]
    if gate is not None:
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
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
            _console(sys.stderr).print(Text(gate_summary(gate)))
        return
    depths = _depths(plan)
    console = _console(sys.stdout)
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


def print_migrations(states: list[MigrationState], unknown: list[str], label: str, fmt: str,
                     just_applied: list[str] | None = None) -> None:
    """Per-migration status: applied (when), pending, or applied by this run."""
    if fmt == JSON:
        sys.stdout.write(json.dumps({
            "database": label,
            "migrations": [{"name": m.name, "applied": m.applied, "appliedAt": m.applied_at} for m in states],
            "unknownApplied": unknown,
        }, indent=2) + "\n")
        return
    table = Table(title=Text(f"Migrations: {label}"), title_justify="left")
    table.add_column("Migration")
    table.add_column("Status")
    table.add_column("Applied at")
    for m in states:
        state = "applied now" if m.name in (just_applied or []) else ("applied" if m.applied else "pending")
        style = "green" if m.applied else "yellow"
        table.add_row(Text(m.name), Text(state, style=style), Text(m.applied_at or ""))
    console = _console(sys.stdout)
    console.print(table)
    for name in unknown:
        warn(f"{name} is recorded as applied in {label} but no migration file has that name")


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
                  console=_console(sys.stderr), transient=True) as bar:
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


def print_backups(found: list[Manifest], fmt: str) -> None:
    if fmt == JSON:
        sys.stdout.write(json.dumps([{"name": m.name, "createdAt": m.created_at, "size": m.size,
                                      "sha256": m.sha256, "tables": m.tables, "reason": m.reason,
                                      "source": m.source} for m in found], indent=2) + "\n")
        return
    table = Table(title=Text(f"{len(found)} backup(s)"), title_justify="left")
    for column in ("Name", "Created (UTC)", "Size", "Rows", "Source", "Reason"):
        table.add_column(column)
    for m in found:
        table.add_row(Text(printable(m.name, None)), Text(printable(m.created_at, None)), Text(f"{m.size:,}"),
                      Text(f"{sum(m.tables.values()):,}"), Text(printable(str(m.source.get("database")), None)),
                      Text(printable(m.reason, None)))
    _console(sys.stdout).print(table)


def print_rows(title: str, rows: list[dict[str, Any]], fmt: str) -> None:
    """Query results as a table, or as a JSON list."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    console = _console(sys.stdout)
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


def print_audit(report: Any, fmt: str) -> None:
    """A security audit: every section, findings marked, and a closing count."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        return
    for key, section in report.sections.items():
        mark = "FINDING" if section.flagged else ("ok" if section.finding else "review")
        print_rows(f"[{mark}] {key}: {section.title}", section.rows, fmt)
    _console(sys.stdout).print(Text(f"{report.findings} finding(s) in {report.database} at {report.generated_at}",
                                    style="bold red" if report.findings else "bold green"))


def print_migration_check(report: Any, fmt: str) -> None:
    """`migrate check`: the verdict, each pending migration's class and its findings (file:line)."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    verdict = report.verdict
    pending = len(report.migrations)
    counted = f"{pending} pending migration(s), {report.queries} serving queries, {report.target}"
    if fmt == MARKDOWN:
        lines = [f"{'✅' if verdict == 'safe' else '❌'} migrate check: **{verdict}** ({_md_cell(counted)})", ""]
        if report.migrations:
            lines += ["| Migration | Class | Severity | Rule | Where | Finding |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for m in report.migrations:
                rows = m.findings or [None]
                for f in rows:
                    lines.append(f"| {_md_cell(m.name)} | {m.cls} | " + (
                        f"{f.severity} | {f.rule} | {_md_cell(f'{f.file}:{f.line}')} | {_md_cell(f.message)} |"
                        if f else "| | | |"))
        lines += [f"- ❌ corpus: `{_md_cell(f'{f.file}:{f.line}')}`: {_md_cell(f.message)}" for f in report.corpus]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=Text(f"migrate check: {verdict} ({counted})"), title_justify="left")
    for column in ("Migration", "Class", "Findings"):
        table.add_column(column)
    for m in report.migrations:
        style = "red" if m.unsafe else "green"
        summary = ", ".join(f"{f.severity} {f.rule} (line {f.line})" for f in m.findings) or "none"
        table.add_row(Text(m.name), Text(m.cls, style=style), Text(summary))
    console = _console(sys.stdout)
    console.print(table)
    for m in report.migrations:
        for f in m.findings:
            console.print(Text(f"{f.file}:{f.line}: {f.severity}: {f.rule}: {printable(f.message)}"))
    for f in report.corpus:  # a query of the corpus that judges nothing
        console.print(Text(f"{f.file}:{f.line}: {f.severity}: {f.rule}: {printable(f.message)}"))
    console.print(Text(f"verdict: {verdict}", style="green" if verdict == "safe" else "red"))


# --- tenants on the Cloudflare for SaaS path (bookingctl tenants) -------------------------------

def print_publish(records: Any, title: str) -> None:
    """The records a salon publishes, one per line, copyable into a DNS provider's form."""
    table = Table(title=Text(printable(title, None)), show_lines=False)
    for column in ("type", "name", "value", "for"):
        table.add_column(column, overflow="fold")
    for record in records:
        cells = (record.type, record.name, record.value, record.purpose)
        table.add_row(*(Text(printable(cell, None)) for cell in cells))
    _console(sys.stdout).print(table)


def print_onboarding(onboarding: Any, fmt: str) -> None:
    """`tenants add`: what was written and created, then what the salon must publish."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(onboarding.to_dict(), indent=2) + "\n")
        return
    console = _console(sys.stdout)
    done = [("tenant row written" if onboarding.row_created else "tenant row already there"),
            ("custom hostname created" if onboarding.hostname_created else "custom hostname already there")]
    console.print(Text(f"{onboarding.slug} on {onboarding.hostname}: {'; '.join(done)}; now {onboarding.state.state}"))
    print_publish(onboarding.publish, f"what the salon publishes for {onboarding.hostname}")


def print_tenant_status(report: Any, fmt: str) -> None:
    """`tenants status`: the fallback origin, then one row per hostname with what blocks it."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    console = _console(sys.stdout)
    fallback = report.fallback_origin
    console.print(Text(f"zone {report.zone_id}: fallback origin {fallback.get('origin')} is {fallback.get('status')}"
                       + (f" ({'; '.join(fallback.get('errors') or [])})" if fallback.get("errors") else "")))
    table = Table(show_lines=False)
    for column in ("tenant", "hostname", "state", "hostname status", "certificate", "what blocks it"):
        table.add_column(column, overflow="fold")
    for h in report.hostnames:
        # Slugs and hostnames come from the tenants table too: as text, escape sequences spelled out.
        table.add_row(*(Text(printable(cell, None)) for cell in (h.slug or "-", h.hostname, h.state, h.status or "-",
                                                                 h.ssl_status or "-")),
                      Text("\n".join(printable(b, None) for b in h.blockers) or "-"))
    console.print(table)
    for h in report.hostnames:
        if h.state in ("blocked", "pending") and h.records:
            print_publish(h.records, f"records to fix for {h.hostname} ({h.state})")
    if report.not_on_widget:
        console.print(Text(f"not on Turnstile widget {report.turnstile_widget} (the bot check fails there): "
                           + printable(", ".join(report.not_on_widget), None)))
    counts = report.to_dict()["counts"]
    console.print(Text(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no SaaS tenants"))


_DOCTOR_MARK = {"pass": ("PASS", "green"), "fail": ("FAIL", "bold red"), "unchecked": ("????", "yellow")}


def print_doctor(report: DoctorReport, fmt: str) -> None:
    """`doctor`: one line per check (its verdict, what was seen and, for a failure, the fix), then a count."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    console = _console(sys.stdout)
    for check in report.checks:
        mark, style = _DOCTOR_MARK[check.status]
        line = Text.assemble((mark, style), f" {check.name}: {check.detail}")
        if check.fix and check.ok is not True:
            line.append(f" -> fix: {check.fix}")
        console.print(line, soft_wrap=True)
    counts = report.to_dict()["counts"]
    console.print(Text(f"stack {report.stack}: {len(report.checks)} checks, {counts['pass']} pass, "
                       f"{counts['fail']} fail, "
                       f"{counts['unchecked']} could not be checked"), soft_wrap=True)
