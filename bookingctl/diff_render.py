"""A stack diff as a reviewer reads it: one summary line, a Mermaid picture, Markdown, or JSON.

bookingctl/diff.py computes the `StackDiff` (two offline plans compared, what each change does to
a release and to data); this module only renders it. Long values (a Worker bundle) are shown as
their size and digest.
"""

from __future__ import annotations

from typing import Any

from bookingctl.diff import StackDiff, shown


def key_inputs(inputs: dict[str, Any]) -> list[str]:
    """An added resource's inputs a reviewer reads (`content: x.pages.dev`), long values shortened;
    `accountId`, which every resource repeats, left out."""
    return [f"{key}: {shown(value)}" for key, value in inputs.items() if key not in _NOISE]


_NOISE = frozenset({"accountId"})


def summary_line(d: StackDiff) -> str:
    c = d.counts()
    return (f"{d.stack} vs {d.base_ref}: {c['add']} to add, {c['update']} to update, {c['replace']} to replace, "
            f"{c['delete']} to delete; policy: {len(d.policy_new)} new, {len(d.policy_fixed)} fixed, "
            f"{len(d.policy_still)} still failing")


def mermaid(d: StackDiff) -> str:
    """The affected resources with their parents and dependencies, as a Mermaid flowchart."""
    affected = {c.urn: c.action for c in d.changes}
    everything = {**d.base_resources, **d.head_resources}
    shown_urns = set(affected) | set(d.followers)
    edges: set[tuple[str, str]] = set()
    for urn in shown_urns.copy():
        r = everything[urn]
        for dep in [r.get("parent"), *(r.get("dependencies") or [])]:
            if dep and dep in everything:
                shown_urns.add(dep)
                edges.add((dep, urn))
    ids = {urn: f"n{i}" for i, urn in enumerate(sorted(shown_urns))}
    lines = ["graph LR"]
    for urn in sorted(shown_urns):
        r = everything[urn]
        state = affected.get(urn) or d.followers.get(urn, "unchanged")
        label = f"{state}: {r['name']}<br/>{r['type'].rsplit(':', 1)[-1]}"
        lines.append(f'    {ids[urn]}["{label}"]')
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in sorted(edges)]
    styles = {"add": "fill:#e6ffed", "update": "fill:#fff8c5", "replace": "fill:#ffe3c2", "delete": "fill:#ffdce0"}
    following = {urn: label.split(" ", 1)[0] for urn, label in d.followers.items()}
    lines += [f"    style {ids[urn]} {styles[action]}" for urn, action in sorted({**following, **affected}.items())]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _violation_rows(label: str, group: list[dict[str, Any]]) -> list[str]:
    rows = []
    for v in group:
        first = (v["message"].splitlines() or [""])[0]
        resource = v["resource"].rsplit("::", 1)[-1] if v["resource"] else "(stack)"
        rows.append(f"| {label} | {v['level']} | `{v['policy']}` | `{resource}` | {_md(first)} |")
    return rows


def to_markdown(d: StackDiff) -> str:
    lines = [f"**Infrastructure diff: {summary_line(d)}**", ""]
    if d.release:
        lines += [f"> 🚀 **{_md(d.release)}**", ""]
    for change in d.warnings:
        lines.append(f"> ⚠️ **{change.action.upper()}**: {change.warning}")
    if d.warnings:
        lines.append("")
    if d.new_mandatory:
        lines.append(f"❌ {len(d.new_mandatory)} new mandatory policy violation(s)")
        lines.append("")
    if d.changes:
        lines += ["| Action | Type | Name | Changed inputs |", "| --- | --- | --- | --- |"]
        for c in d.changes:
            if c.action == "add":
                keys = "<br>".join(f"`{_md(line)}`" for line in key_inputs(c.new_inputs)) or "(new)"
            else:
                keys = ", ".join(f"`{path}`" for path, _, _ in c.paths)
            lines.append(f"| {c.action} | `{c.type}` | `{c.name}` | {keys} |")
        lines.append("")
    else:
        lines += ["No resource changes.", ""]
    header = ["| Policy result | Level | Policy | Resource | Finding |", "| --- | --- | --- | --- | --- |"]
    if d.policy_new or d.policy_fixed:
        lines += header + _violation_rows("new", d.policy_new) + _violation_rows("fixed", d.policy_fixed) + [""]
    if d.policy_still:
        # Unchanged by this change: kept out of the way, one click from view.
        lines += [f"<details><summary>{len(d.policy_still)} finding(s) still failing, unchanged by this diff</summary>",
                  "", *header, *_violation_rows("still failing", d.policy_still), "", "</details>", ""]
    details = [c for c in d.changes if c.inputs]
    if details:
        lines += ["<details><summary>Changed inputs (secrets redacted)</summary>", ""]
        for c in details:
            lines.append(f"**{c.action}** `{c.name}`")
            lines.append("")
            lines += [f"- `{path}`: `{_md(shown(old))}` → `{_md(shown(new))}`" for path, old, new in c.paths]
            lines.append("")
        lines += ["</details>", ""]
    if d.changes:
        lines += ["<details><summary>Affected resources</summary>", "", "```mermaid", mermaid(d), "```", "",
                  "</details>", ""]
    return "\n".join(lines)


def to_json(d: StackDiff) -> dict[str, Any]:
    return {"stack": d.stack, "base": d.base_ref, "summary": summary_line(d), "counts": d.counts(),
            "release": d.release,
            "changes": [{"action": c.action, "type": c.type, "name": c.name, "urn": c.urn, "warning": c.warning,
                         "inputs": {k: {"before": o, "after": n} for k, (o, n) in c.inputs.items()},
                         "paths": [{"path": p, "before": o, "after": n} for p, o, n in c.paths]}
                        for c in d.changes],
            "policy": {"new": d.policy_new, "fixed": d.policy_fixed, "stillFailing": d.policy_still}}
