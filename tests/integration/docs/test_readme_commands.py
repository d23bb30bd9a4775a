"""The documentation's shell commands run as written: every command README.md and docs/**/*.md show is
extracted, the offline ones are run and must exit as the documentation says, and every other one is
skipped by a rule that says why.

A command added to the README or a doc that no rule covers fails `test_every_readme_command_is_run_or_
skipped_with_a_reason` until it is added to RUN (with the exit code the docs give) or a rule skips it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

# Processes, sockets or whole-stack plans: part of `make check`, left out of the quick `make test`.
pytestmark = pytest.mark.slow

README = REPO / "README.md"
DOCS = REPO / "docs"


def documentation() -> dict[Path, str]:
    """README.md and every page under docs/ (the front door and the pages it links to), by path."""
    return {path: path.read_text() for path in [README, *sorted(DOCS.rglob("*.md"))]}


def documented_commands() -> list[str]:
    """Each shell command of the README and the docs once, in order of the files."""
    commands: list[str] = []
    for text in documentation().values():
        commands += [c for c in readme_commands(text) if c not in commands]
    return commands
PROGRAMS = ("scripts/", "venv/bin/", "bookingctl ", "make ", "bench/", "python", ".ci/run", "pulumi ", "wrangler ",
            "export ", "(echo")


def readme_commands(text: str) -> list[str]:
    """Each shell command of the README once, in order: lines of ```sh blocks, then inline code spans
    that start with a program (spans may wrap lines; whitespace is collapsed)."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        found += [line.split("  #")[0].strip() for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    commands: list[str] = []
    for command in found:
        if command.startswith(PROGRAMS) and command not in commands:
            commands.append(command)
    return commands


# Offline commands, run from the repository's root as written, and the exit code the README gives.
RUN: dict[str, int] = {
    "scripts/bookingctl plan production": 1,  # "The gate is a gate": 1 until evidence is supplied
    "scripts/bookingctl plan staging": 0,
    "scripts/bookingctl plan production --policy-config policies/examples/checklist-evidence.json": 0,
    "bookingctl --version": 0,
    "make install": 0,
    "venv/bin/pip show pulumi-cloudflare": 0,
    'python -c "import pulumi, pulumi_cloudflare"': 0,
}

_PLACEHOLDER = re.compile(r"[\[\]<>|]|\.\.\.|\b(?:[A-Z][A-Z_0-9]*|[A-Z])\b(?!=)")

# (why it is not run, which commands): the first rule that matches a command skips it.
SKIP: list[tuple[str, Callable[[str], bool]]] = [
    ("is the test suite that runs this test (make lint is its first step)",
     lambda c: c in ("make test", "make check", ".ci/run", "make lint", "make quick", "make slow",
                   "make all-tests")),
    ("the real Workers runtime (npm ci of wrangler, then workerd): tests/runtime runs it under make test-runtime",
     lambda c: c in ("make dev", "make test-runtime", "make install-runtime")
     or (c.startswith("venv/bin/bookingctl ") and ".wrangler/dev/" in c)),
    ("needs the Pulumi CLI or wrangler, which an offline machine does not have",
     lambda c: c.startswith(("pulumi ", "wrangler ", "python -u -m pulumi.policy"))),
    ("a synopsis with placeholders (STACK, FILE, [options], a|b, ...), not a command to run as written",
     lambda c: bool(_PLACEHOLDER.search(c.replace("--version", "")))),
    ("reaches a stack's Cloudflare account (a token and the network)", lambda c: "--stack" in c),
    ("a benchmark of minutes; tests/integration/docs/test_scripts_runnable.py runs each one with --help",
     lambda c: c == "make bench" or c.startswith("bench/") or c.startswith("venv/bin/python -m bench.")),
    ("sets a variable; nothing to run", lambda c: c.startswith("export ")),
    ("rewrites docs/reference/; tests/integration/docs/test_reference_drift.py renders the same text in memory",
     lambda c: c == "venv/bin/python scripts/gen_reference.py"),
    ("writes the completion script into the user's shell start-up files; tests/integration/bookingctl/"
     "test_completion.py checks the completion and the script it installs",
     lambda c: c == "venv/bin/bookingctl --install-completion"),
    ("names a program or script in prose; its own commands are listed and run above",
     lambda c: c in ("scripts/bookingctl", "venv/bin/bookingctl", "scripts/migration_evidence.py",
                     "scripts/checklist_evidence.py", "scripts/openapi_subset.py", "scripts/*.py",
                     "scripts/gen_reference.py")),
    ("names a command (and maybe one option) in prose; its synopsis is skipped or run above",
     lambda c: c.startswith("bookingctl ") and c not in RUN),
]


def skipped(command: str) -> str | None:
    return next((why for why, matches in SKIP if matches(command)), None)


def test_every_readme_command_is_run_or_skipped_with_a_reason() -> None:
    commands = documented_commands()
    unaccounted = [c for c in commands if c not in RUN and skipped(c) is None]
    assert not unaccounted, f"add each to RUN with its exit code, or give a rule skipping it: {unaccounted}"
    missing = [c for c in RUN if c not in commands]
    assert not missing, f"RUN lists commands neither the README nor docs/ show any more: {missing}"


def test_the_front_door_shows_the_two_commands_and_runs_from_them() -> None:
    """The README stays a front door (the long explanations live in docs/) and starts from the two commands."""
    text = README.read_text()
    assert len(text.splitlines()) <= 200, "README.md is the front door: move the detail into docs/"
    two = re.search(r"```sh\n(.*?)```", text, re.S)
    assert two is not None
    assert [line.split("  #")[0].strip() for line in two.group(1).splitlines()] == [
        "scripts/bookingctl plan production", "make check"]
    for runbook in sorted((DOCS / "runbooks").glob("*.md")):
        assert f"(docs/runbooks/{runbook.name})" in text, f"the README's index does not link {runbook.name}"


def test_the_skipped_commands_are_listed_with_their_reasons() -> None:
    """Kept visible on purpose: `pytest -s` prints which documented commands are not run, and why."""
    reasons: dict[str, list[str]] = {}
    for command in documented_commands():
        if command not in RUN:
            reasons.setdefault(skipped(command) or "UNACCOUNTED", []).append(command)
    for why, commands in reasons.items():
        print(f"skipped ({why}): {len(commands)}")
        for command in commands:
            print(f"    {command}")
    assert "UNACCOUNTED" not in reasons


@pytest.mark.parametrize(("command", "code"), list(RUN.items()), ids=list(RUN))
def test_an_offline_readme_command_runs_as_written(command: str, code: int) -> None:
    env = dict(os.environ, PATH=f"{REPO / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(command, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == code, f"{command}: exit {result.returncode}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr


def test_the_extractor_finds_wrapped_spans_and_sh_blocks(tmp_path: Path) -> None:
    text = "Run `scripts/bookingctl plan\n  staging` then:\n```sh\nmake test   # all\n```\n"
    assert readme_commands(text) == ["make test", "scripts/bookingctl plan staging"]


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)  # a shell comment in a block is no heading
    return {_github_anchor(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", prose)}


def test_every_link_of_the_readme_and_docs_reaches_a_file_and_heading_that_exist() -> None:
    """The README's index and the docs' cross-links lead somewhere: a relative link names a file of the
    repository, and its #anchor a heading of that file (as GitHub spells anchors)."""
    broken: list[str] = []
    links = 0
    for path, text in documentation().items():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            links += 1
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and (linked.is_dir() or anchor not in _anchors(linked.read_text())):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert links >= 30
    assert not broken, broken


def test_the_canary_runbook_is_numbered_steps_with_the_commands_to_type() -> None:
    section = (DOCS / "runbooks" / "failed-canary.md").read_text()
    # Numbered from 1 in each part: the failed canary, and the job that died mid-canary.
    parts = [re.findall(r"(?m)^(\d+)\. ", part) for part in re.split(r"(?m)^## ", section)]
    assert all(steps == [str(n) for n in range(1, len(steps) + 1)] for steps in parts) and len(parts[0]) >= 5
    assert len(parts) == 2 and len(parts[1]) >= 3
    for command in ("release status --stack production", "release abort --stack production",
                    "verify --stack production", "release quarantine clear"):
        assert command in " ".join(section.split()), command


@pytest.mark.parametrize("runbook", sorted((DOCS / "runbooks").glob("*.md")), ids=lambda p: p.name)
def test_a_runbook_is_numbered_steps_with_the_commands_to_type(runbook: Path) -> None:
    text = runbook.read_text()
    steps = re.findall(r"(?m)^(\d+)\. ", text)
    assert len(steps) >= 3 and steps[:3] == ["1", "2", "3"], f"{runbook.name}: steps numbered from 1"
    typed = [c for c in readme_commands(text) if c.startswith(("venv/bin/bookingctl ", "bookingctl "))]
    assert len(typed) >= 2, f"{runbook.name} names fewer than two commands to type"


@pytest.mark.parametrize("term", ["CrossGuard", "Analyzer protocol", "bookmark", "Quarantine", "Canary", "Stack",
                                  "Expand / contract", "Hook"])
def test_the_glossary_explains_the_jargon(term: str) -> None:
    glossary = (DOCS / "glossary.md").read_text()
    assert re.search(rf"(?m)^- \*\*[^*]*{re.escape(term)}", glossary) or f"**{term}**" in glossary, term


def test_the_policy_table_lists_every_policy_of_the_pack() -> None:
    from policies.pack import CATALOG

    section = (DOCS / "policies.md").read_text().split("\n## ", 1)[0]
    listed = set(re.findall(r"(?m)^\| `([a-z-]+)` \| (?:stack|resource) \|", section))
    assert listed == set(CATALOG.names), (sorted(set(CATALOG.names) - listed), sorted(listed - set(CATALOG.names)))


def _click_command(words: list[str]) -> tuple[Any, list[str]]:
    """The click command `bookingctl WORDS...` names, and the words after its name."""
    import typer.main
    from typer._click import Context

    from bookingctl.cli import app

    command: Any = typer.main.get_command(app)
    rest = list(words)
    # Groups load their commands when asked (bookingctl's lazy groups): ask, as the CLI does.
    while rest and hasattr(command, "get_command"):
        found = command.get_command(Context(command), rest[0])
        if found is None:
            break
        command, rest = found, rest[1:]
    return command, rest


@pytest.mark.parametrize("runbook", sorted((DOCS / "runbooks").glob("*.md")), ids=lambda p: p.name)
def test_every_command_a_runbook_gives_exists_with_every_option_it_uses(runbook: Path) -> None:
    """A newcomer at 3 a.m. types what the runbook says: each `bookingctl GROUP COMMAND` is a command
    (not a group), and each --option it shows is one of that command's."""
    problems = []
    for typed in readme_commands(runbook.read_text()):
        if not typed.startswith(("venv/bin/bookingctl ", "bookingctl ")):
            continue
        words = typed.split()[1:]
        command, rest = _click_command(words)
        if hasattr(command, "get_command"):
            if len(words) > 1 and not words[1].startswith("-"):  # `bookingctl tenants` alone names the group
                problems.append(f"{typed!r}: no command {' '.join(words[:2])}")
            continue
        known = {opt for param in command.params for opt in param.opts}
        used = {word.split("=")[0] for word in rest if word.startswith("-")}
        problems += [f"{typed!r}: no option {opt}" for opt in sorted(used - known - {"--help"})]
    assert not problems, problems
