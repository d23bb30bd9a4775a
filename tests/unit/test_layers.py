"""Imports run one way: booking_shared <- stackconfig <- infra, ops, policies <- bookingctl. No cycles.

Read from the code itself (module-level imports; an import inside a function runs only when it is
called, which is how the Pulumi program binds the hooks without loading the operations layer).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("booking_shared", "stackconfig", "infra", "ops", "policies", "bookingctl")
# What each package may import at module level, besides itself.
ALLOWED = {
    "booking_shared": set(),
    # The typed stack config: below everything that reads a stack, and free of Pulumi.
    "stackconfig": {"booking_shared"},
    "infra": {"booking_shared", "stackconfig"},
    "ops": {"booking_shared", "stackconfig"},
    "policies": {"booking_shared", "stackconfig"},
    "bookingctl": {"booking_shared", "stackconfig", "infra", "ops", "policies"},
}


# The rooms of `ops`, bottom first: a room imports only the rooms before it and the shared modules
# at ops/'s top (targets, http, localdev), which import no room. Any import counts here, inside a
# function too: a room that reaches up at run time is as tangled as one that does at import time.
# `previews` (issue #26) creates whole environments from backups, migrations and the scrubber: on top.
OPS_ROOMS = ("database", "backups", "tenants", "observation", "releases", "previews")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, *, typing: bool = False) -> set[str]:
    """Modules of this repository that `path` imports when it is imported (not inside functions;
    under `if TYPE_CHECKING:` only with `typing`)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and not typing:
            continue
        for inner in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []:
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            names = ([a.name for a in inner.names] if isinstance(inner, ast.Import)
                     else [inner.module] if isinstance(inner, ast.ImportFrom) and inner.module and not inner.level
                     else [])
            found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def modules(*, typing: bool = False) -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            graph[module_name(path)] = module_level_imports(path, typing=typing)
    return graph


@pytest.mark.parametrize("package", PACKAGES)
def test_a_layer_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {f"{module} imports {target}" for module, targets in modules().items()
             if module.split(".")[0] == package
             for target in targets if target.split(".")[0] not in ALLOWED[package] | {package}}
    assert not wrong, sorted(wrong)


def every_import(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {name for node in ast.walk(tree)
            for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])}


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in OPS_ROOMS else "(shared)"


def test_the_rooms_of_ops_import_only_the_rooms_below_them() -> None:
    rank = {"(shared)": -1, **{room: i for i, room in enumerate(OPS_ROOMS)}}
    wrong = []
    for path in sorted((REPO / "ops").rglob("*.py")):
        here = room_of(module_name(path) + (".x" if path.name == "__init__.py" else ""))
        for target in every_import(path):
            if target.split(".")[0] != "ops" or target == "ops":
                continue
            there = room_of(target if target.count(".") > 1 else target + ".x")
            if there != here and rank[there] >= rank[here]:
                wrong.append(f"{path.relative_to(REPO)} ({here}) imports {target} ({there})")
    assert not wrong, wrong
    # Every module of ops/ is in a room but the few shared ones, so the rule above has something to hold.
    shared = sorted(p.name for p in (REPO / "ops").glob("*.py") if p.name != "__init__.py")
    assert shared == ["http.py", "localdev.py", "targets.py"], shared


def test_there_is_no_import_cycle() -> None:
    # Imports for type hints too: two modules that need each other's types are one tangle, drawn as
    # a circle (stackconfig/preview.py reads the config through a Protocol for this reason).
    graph = modules(typing=True)

    def resolve(target: str) -> str | None:
        while target and target not in graph:
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {t for t in map(resolve, targets) if t and t != m} for m, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


def test_planning_the_program_never_loads_the_operations_layer() -> None:
    """The hooks are bound in infra/hooks.py; ops (and its httpx, the Cloudflare SDK) load only when
    a hook fires under `pulumi up`, never for a plan or a preview."""
    code = ("import sys; from booking_shared.project import find_project, load_stack; "
            "from bookingctl.planner import run_program; "
            "p = find_project(__import__('pathlib').Path(sys.argv[1])); s = load_stack(p, 'production'); "
             "run_program(p, 'production', s.flat, s.secret_keys); "
             "print(sorted(m for m in sys.modules if m == 'ops' or m.startswith(('ops.', 'httpx', 'cloudflare'))))")
    result = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_every_module_of_the_project_is_tracked_by_git() -> None:
    """A module git ignores is missing from every clone while the working tree hides it (an
    unanchored `backups/` once ignored the whole ops/backups/ room)."""
    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", *PACKAGES],
                            cwd=REPO, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    ignored = [line for line in listed.stdout.splitlines() if line.endswith(".py")]
    assert not ignored, f"ignored by .gitignore, so never committed: {ignored}"


def test_no_module_of_the_project_is_over_450_lines() -> None:
    """Issue #23's bound: a module a reader can hold in mind (tests and their helpers aside)."""
    long = {str(path.relative_to(REPO)): n for package in (*PACKAGES, "scripts", "bench")
            for path in (REPO / package).rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, f"split these along what they do: {long}"
