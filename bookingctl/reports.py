"""How each operation's report reads: migrations, backups, the audit, migrate check, tenants, doctor.

Every renderer takes the operation's own result and the format (`table` or `json`); the consoles,
the plan and gate rendering and generic rows stay in bookingctl/output.py. Text that comes from a
database or an API is passed through `printable` before it reaches a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from booking_shared.text import printable
from bookingctl import output
from bookingctl.output import JSON, MARKDOWN, md_cell, print_rows, warn

if TYPE_CHECKING:  # only names: the operations load when their command runs
    from ops.backups.backups import Manifest
    from ops.database.migrations import MigrationState
    from ops.observation.doctor import Report as DoctorReport


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
    console = output.console_for(sys.stdout)
    console.print(table)
    for name in unknown:
        warn(f"{name} is recorded as applied in {label} but no migration file has that name")


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
    output.console_for(sys.stdout).print(table)


def print_audit(report: Any, fmt: str) -> None:
    """A security audit: every section, findings marked, and a closing count."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        return
    for key, section in report.sections.items():
        mark = "FINDING" if section.flagged else ("ok" if section.finding else "review")
        print_rows(f"[{mark}] {key}: {section.title}", section.rows, fmt)
    closing = f"{report.findings} finding(s) in {report.database} at {report.generated_at}"
    output.console_for(sys.stdout).print(Text(closing, style="bold red" if report.findings else "bold green"))


def print_migration_check(report: Any, fmt: str) -> None:
    """`migrate check`: the verdict, each pending migration's class and its findings (file:line)."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    verdict = report.verdict
    pending = len(report.migrations)
    counted = f"{pending} pending migration(s), {report.queries} serving queries, {report.target}"
    if fmt == MARKDOWN:
        lines = [f"{'✅' if verdict == 'safe' else '❌'} migrate check: **{verdict}** ({md_cell(counted)})", ""]
        if report.migrations:
            lines += ["| Migration | Class | Severity | Rule | Where | Finding |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for m in report.migrations:
                rows = m.findings or [None]
                for f in rows:
                    lines.append(f"| {md_cell(m.name)} | {m.cls} | " + (
                        f"{f.severity} | {f.rule} | {md_cell(f'{f.file}:{f.line}')} | {md_cell(f.message)} |"
                        if f else "| | | |"))
        lines += [f"- ❌ corpus: `{md_cell(f'{f.file}:{f.line}')}`: {md_cell(f.message)}" for f in report.corpus]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=Text(f"migrate check: {verdict} ({counted})"), title_justify="left")
    for column in ("Migration", "Class", "Findings"):
        table.add_column(column)
    for m in report.migrations:
        style = "red" if m.unsafe else "green"
        summary = ", ".join(f"{f.severity} {f.rule} (line {f.line})" for f in m.findings) or "none"
        table.add_row(Text(m.name), Text(m.cls, style=style), Text(summary))
    console = output.console_for(sys.stdout)
    console.print(table)
    for m in report.migrations:
        for f in m.findings:
            console.print(Text(f"{f.file}:{f.line}: {f.severity}: {f.rule}: {printable(f.message)}"))
    for f in report.corpus:  # a query of the corpus that judges nothing
        console.print(Text(f"{f.file}:{f.line}: {f.severity}: {f.rule}: {printable(f.message)}"))
    console.print(Text(f"verdict: {verdict}", style="green" if verdict == "safe" else "red"))


def print_rehearsal(report: Any, fmt: str) -> None:
    """`migrate rehearse`: the verdict, each migration's status and tables, and its problems (file:line)."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    verdict = report.verdict
    counted = (f"{len(report.migrations)} pending migration(s) on {report.rows:,} rows of {report.source}, "
               f"{report.seconds:.1f} s")
    if fmt == MARKDOWN:
        lines = [f"{'✅' if verdict == 'safe' else '❌'} migrate rehearse: **{verdict}** ({md_cell(counted)})", ""]
        if report.findings:
            lines += ["| Migration | Severity | Rule | Where | Table | Rows | Finding |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {md_cell(p.file or report.source)} | {p.severity} | {p.rule} | "
                      f"{md_cell(f'{p.file}:{p.line}')} | {md_cell(p.table or '')} | "
                      f"{'' if p.rows is None else f'{p.rows:,}'} | {md_cell(p.message)} |" for p in report.findings]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=Text(f"migrate rehearse: {verdict} ({counted})"), title_justify="left")
    for column in ("Migration", "Status", "Seconds", "Rows (before -> after)"):
        table.add_column(column)
    for m in report.migrations:
        changed = ", ".join(f"{t.table} {'-' if t.before is None else f'{t.before:,}'} -> "
                            f"{'-' if t.after is None else f'{t.after:,}'}" for t in m.tables) or "no change"
        style = "red" if m.status == "failed" else "green" if m.status == "applied" else "dim"
        table.add_row(Text(m.name), Text(m.status, style=style), f"{m.seconds:.1f}", Text(changed))
    console = output.console_for(sys.stdout)
    console.print(table)
    for p in report.findings:
        sample = f" e.g. {json.dumps(list(p.sample), default=str)}" if p.sample else ""
        console.print(Text(f"{p.file or report.source}:{p.line}: {p.severity}: {p.rule}: "
                           f"{printable(p.message)}{printable(sample)}"))
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
    output.console_for(sys.stdout).print(table)


def print_onboarding(onboarding: Any, fmt: str) -> None:
    """`tenants add`: what was written and created, then what the salon must publish."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(onboarding.to_dict(), indent=2) + "\n")
        return
    console = output.console_for(sys.stdout)
    done = [("tenant row written" if onboarding.row_created else "tenant row already there"),
            ("custom hostname created" if onboarding.hostname_created else "custom hostname already there")]
    console.print(Text(f"{onboarding.slug} on {onboarding.hostname}: {'; '.join(done)}; now {onboarding.state.state}"))
    print_publish(onboarding.publish, f"what the salon publishes for {onboarding.hostname}")


def print_tenant_status(report: Any, fmt: str) -> None:
    """`tenants status`: the fallback origin, then one row per hostname with what blocks it."""
    if fmt == JSON:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    console = output.console_for(sys.stdout)
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
    console = output.console_for(sys.stdout)
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
