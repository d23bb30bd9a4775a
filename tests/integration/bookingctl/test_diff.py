"""`bookingctl diff` on a scratch git repository whose commits add, change, replace and delete resources."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookingctl.cli import app
from bookingctl.diff import StackDiff, diff
from bookingctl.diff_render import mermaid, to_markdown
from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

TENANT = ("  booking:tenants:\n    - slug: glamour\n      hostname: book.glamoursalon.co.za\n"
          "      zoneId: " + "ab" * 16 + "\n")
SNAPSHOT = REPO / "tests" / "snapshots" / "diff_staging.md"


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commits: base; +tenant; retention 7 -> 14; database renamed; tenant removed."""
    root = tmp_path_factory.mktemp("diff-repo")
    for name in ("Pulumi.yaml", "Pulumi.production.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, root / name)
    for folder in ("booking_shared", "infra", "policies", "bookingctl", "ops", "worker", "migrations"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "tag", "base")
    stack = root / "Pulumi.staging.yaml"
    steps = [("tenant", lambda t: t + TENANT),
             ("retention", lambda t: t.replace('RetentionDays: "7"', 'RetentionDays: "14"')),
             ("rename", lambda t: t.replace("appointmentbooking-db-staging\n", "appointmentbooking-db-staging-v2\n")),
             ("untenant", lambda t: t.replace(TENANT, ""))]
    for message, edit in steps:
        stack.write_text(edit(stack.read_text()))
        git(root, "commit", "-qam", message)
        git(root, "tag", message)
    production = root / "Pulumi.production.yaml"
    production.write_text(production.read_text().replace("appointmentbooking-db\n", "appointmentbooking-db-v2\n"))
    git(root, "commit", "-qam", "production rename")
    git(root, "tag", "prod-rename")
    return root


_DIFFS: dict[tuple[str, str, str], StackDiff] = {}


def diffed(repo: Path, head: str, stack: str, base: str, policy_config: Path | None = None) -> StackDiff:
    """The diff of `stack` between `base` and the tree at `head`, computed once per module: each
    costs two plans in subprocesses, and several tests read the same one."""
    key = (head, stack, base)
    if key not in _DIFFS:
        _DIFFS[key] = diff(at(repo, head), stack, base, policy_config)
    return _DIFFS[key]


def at(repo: Path, ref: str) -> Path:
    """The repository checked out at `ref` (the diff's head side is always the working tree)."""
    git(repo, "checkout", "-q", ref)
    return repo


def test_adding_a_tenant_adds_its_resources_widens_the_turnstile_widget_and_exits_3(repo: Path) -> None:
    result = diffed(repo, "tenant", "staging", "base")
    assert result.counts() == {"add": 4, "update": 1, "replace": 0, "delete": 0}
    assert {c.name for c in result.changes if c.action == "add"} == {
        "tenant-glamour", "tenant-glamour-dns", "tenant-glamour-route", "tenant-glamour-pages-domain"}
    [widget] = [c for c in result.changes if c.action == "update"]
    assert (widget.name, list(widget.inputs)) == ("edge-turnstile", ["domains"])
    code = CliRunner().invoke(app, ["diff", "staging", "--base", "base", "--project-dir", str(repo)]).exit_code
    assert code == 3


def test_changed_retention_is_an_update_and_a_new_mandatory_violation(repo: Path) -> None:
    result = diffed(repo, "retention", "staging", "tenant")
    [change] = result.changes
    assert (change.action, change.name, list(change.inputs)) == ("update", "backups-lifecycle", ["rules"])
    assert [v["policy"] for v in result.new_mandatory] == ["backup-retention"]  # the CLI's exit 1: see below


def test_a_nested_change_shows_the_changed_leaf_and_its_values_in_every_format(repo: Path) -> None:
    """A reviewer sees `maxAge: 604800 -> 1209600`, not two 160-character documents."""
    leaf = "rules[0].deleteObjectsTransition.condition.maxAge"
    result = diffed(repo, "retention", "staging", "tenant")
    assert (leaf, 7 * 86_400, 14 * 86_400) in result.changes[0].paths
    assert ("rules[0].id", "expire-backups-after-7-days", "expire-backups-after-14-days") in result.changes[0].paths
    assert len(result.changes[0].paths) == 2  # nothing else in the rule changed
    assert f"- `{leaf}`: `604800` → `1209600`" in to_markdown(result)
    runner = CliRunner()
    at(repo, "retention")
    table = runner.invoke(app, ["diff", "staging", "--base", "tenant", "--project-dir", str(repo)])
    assert f"{leaf}: 604800 -> 1209600" in table.stdout
    # The table format names the new violation that makes it exit 1.
    assert table.exit_code == 1
    assert "Policy results this diff changes" in table.stdout and "backup-retention" in table.stdout
    data = json.loads(runner.invoke(app, ["diff", "staging", "--base", "tenant", "-f", "json",
                                          "--project-dir", str(repo)]).stdout)
    assert {"path": leaf, "before": 604800, "after": 1209600} in data["changes"][0]["paths"]


@pytest.mark.parametrize("ref", ["-f", "--orphan=x", ""])
def test_a_base_that_looks_like_an_option_is_refused(repo: Path, ref: str) -> None:
    at(repo, "main")
    result = CliRunner().invoke(app, ["diff", "staging", "--base", ref, "--project-dir", str(repo)])
    assert result.exit_code == 2 and "is not a git ref" in result.stderr


def test_sarif_is_refused_rather_than_silently_printing_a_table(repo: Path) -> None:
    result = CliRunner().invoke(app, ["diff", "staging", "--base", "main", "-f", "sarif", "--project-dir", str(repo)])
    assert result.exit_code == 2 and result.stdout == ""


def test_renamed_database_is_a_replacement_listed_first_with_a_warning(repo: Path) -> None:
    result = diffed(repo, "rename", "staging", "retention")
    first = result.changes[0]
    assert (first.action, first.name) == ("replace", "database-d1")
    assert first.warning == "D1 database database-d1 would be replaced: its data goes with it"
    assert first.inputs["name"] == ("appointmentbooking-db-staging", "appointmentbooking-db-staging-v2")
    text = to_markdown(result)
    assert text.index("⚠️ **REPLACE**") < text.index("| Action |")


def test_removing_the_tenant_deletes_its_resources(repo: Path) -> None:
    result = diffed(repo, "untenant", "staging", "rename")
    assert result.counts()["delete"] == 4 and result.counts()["add"] == 0


def test_no_changes_exits_0(repo: Path) -> None:
    at(repo, "main")
    result = CliRunner().invoke(app, ["diff", "staging", "--base", "main", "--project-dir", str(repo)])
    assert result.exit_code == 0 and "0 to add, 0 to update, 0 to replace, 0 to delete" in result.stdout


def test_unknown_ref_is_a_usage_error(repo: Path) -> None:
    at(repo, "main")
    result = CliRunner().invoke(app, ["diff", "staging", "--base", "no-such-ref", "--project-dir", str(repo)])
    assert result.exit_code == 2 and "cannot check out 'no-such-ref'" in result.stderr


def test_json_output_lists_changes_with_before_and_after(repo: Path) -> None:
    at(repo, "rename")
    result = CliRunner().invoke(app, ["diff", "staging", "--base", "retention", "-f", "json",
                                      "--project-dir", str(repo)])
    data = json.loads(result.stdout)
    d1 = next(c for c in data["changes"] if c["name"] == "database-d1")
    assert d1["inputs"]["name"] == {"before": "appointmentbooking-db-staging",
                                    "after": "appointmentbooking-db-staging-v2"}


def test_markdown_matches_the_snapshot(repo: Path) -> None:
    text = to_markdown(diffed(repo, "rename", "staging", "retention"))
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "run with UPDATE_SNAPSHOTS=1 after an intended change, then review it"


def test_mermaid_graph_is_well_formed(repo: Path) -> None:
    graph = mermaid(diffed(repo, "rename", "staging", "retention"))
    lines = graph.splitlines()
    assert lines[0] == "graph LR"
    nodes = {m.group(1) for line in lines if (m := re.fullmatch(r'    (n\d+)\["[^"\[\]]+"\]', line))}
    edges = [re.fullmatch(r"    (n\d+) --> (n\d+)", line) for line in lines if "-->" in line]
    styles = [re.fullmatch(r"    style (n\d+) fill:#[0-9a-f]{6}", line) for line in lines if "style" in line]
    assert nodes and all(e and {e.group(1), e.group(2)} <= nodes for e in edges)
    assert styles and all(s and s.group(1) in nodes for s in styles)
    assert len(lines) == 1 + len(nodes) + len(edges) + len(styles)  # nothing else, nothing malformed


def test_replacing_the_protected_production_database_warns_that_both_data_and_protection_are_at_stake(
        repo: Path, tmp_path: Path) -> None:
    # The migrate-check evidence is bound to the stack's own D1: this head's is the renamed one.
    evidence = json.loads((REPO / "policies" / "examples" / "checklist-evidence.json").read_text())
    evidence["migrations-rollback-safe"]["target"] = "D1 appointmentbooking-db-v2 (example: nothing pending)"
    config = tmp_path / "evidence.json"
    config.write_text(json.dumps(evidence))
    result = diffed(repo, "prod-rename", "production", "untenant", config)
    first = result.changes[0]
    assert (first.action, first.name) == ("replace", "database-d1")
    assert first.warning == ("D1 database database-d1 would be replaced: its data goes with it "
                             "(it is protected: the engine refuses until protect is lifted)")
    assert result.policy_new == [] and result.counts()["replace"] == 1
    at(repo, "main")
