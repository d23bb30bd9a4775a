#!/usr/bin/env python3
"""Benchmark of `bookingctl plan` (plan + policy gate), against the cost of importing the SDKs it needs.

    bench/plan_bench.py [--runs 5] [--tenants 0,100,1000] [--saas-salons 1000] [--json]

Floor: `python -c "import pulumi, pulumi_cloudflare"`, the least any plan can cost. Each figure is
the median wall time of `--runs` fresh processes, all measured in this one run, so machine load
affects floor and plans alike. Tenant scaling plans a scratch copy of the production stack with
N synthetic tenants (3 cloud resources and 1 component each) and reports the cost per extra
resource. Targets (issue #2): plan <= 1.5x the floor; 1,000 tenants in under 30 s. bookingctl skips
the interpreter's teardown of the SDK's objects (0.4 s), which the floor's plain `python -c` pays, so
the ratio to the floor's import time alone (before teardown) is printed as well.

The SaaS path (`--saas-salons N`, issue #16) plans the same production stack with `booking:saas`
set, after onboarding N salons the way `bookingctl tenants add` does: as rows of the tenants table
(a scratch SQLite file standing for D1) and custom hostnames, which are data, not resources. The
stack is then the same size with 1,000 salons as with none (the SaaS zone's three resources and their
component on top); target: within 1.2x the floor.
Every run passes the example checklist evidence, so production passes the gate (exit 0). The gate
figure is the policy evaluation after the program ran (`policyGate.seconds`: GetAnalyzerInfo,
Configure, Analyze per resource, AnalyzeStack); the pack's start-up overlaps the planning.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BOOKINGCTL = str(BIN / "bookingctl")
EVIDENCE = str(REPO / "policies" / "examples" / "checklist-evidence.json")


def median_seconds(cmd: list[str], runs: int, cwd: Path) -> tuple[float, list[str]]:
    times, outs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
        outs.append(proc.stdout)
    return statistics.median(times), outs


def interleaved_medians(cmds: dict[str, tuple[list[str], Path]], runs: int) -> dict[str, tuple[float, list[str]]]:
    """Median seconds of each command, run in turn (a, b, c, a, b, c, ...): on a machine shared with
    other work, load then weighs on every command alike and the ratios between them stay fair."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    outs: dict[str, list[str]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, (cmd, cwd) in cmds.items():
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
            outs[name].append(proc.stdout)
    return {name: (statistics.median(times[name]), outs[name]) for name in cmds}


def plan_cmd(stack: str) -> list[str]:
    return [BOOKINGCTL, "plan", stack, "--format", "json", "--policy-config", EVIDENCE]


def gate_seconds(outs: list[str]) -> float:
    return statistics.median(json.loads(out)["policyGate"]["seconds"] for out in outs)


def tenant_project(count: int, into: Path, turnstile_plan: str | None = None,
                   zone_plan: str | None = "business") -> Path:
    """A scratch copy of the project whose production stack serves `count` extra tenants.

    `turnstile_plan`: booking:turnstile.plan. 1,000 tenants need Turnstile Enterprise (the free plan's
    15 hostnames a widget would need 67 widgets, and an account holds 20). `zone_plan`: each tenant
    zone's booking:tenants[].zonePlan (None: unset, Free).
    """
    for name in ("Pulumi.yaml", "Pulumi.production.yaml"):
        shutil.copy(REPO / name, into / name)
    for folder in ("infra", "worker", "policies"):
        shutil.copytree(REPO / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__"))
    stack = into / "Pulumi.production.yaml"
    data = yaml.safe_load(stack.read_text())
    # Each salon's own zone on Business, like the committed stacks' zone: the four rate-limiting rules
    # production writes in every zone it serves need it (booking_shared/limits.py).
    data["config"]["booking:tenants"] = [
        {"slug": f"salon-{i}", "hostname": f"www.salon-{i}.co.za", "zoneId": f"{i:032x}",
         **({"zonePlan": zone_plan} if zone_plan else {})}
        for i in range(count)
    ]
    if turnstile_plan is not None:
        data["config"]["booking:turnstile"] = {"plan": turnstile_plan}
    # Every scalar quoted: PyYAML writes YAML 1.1, where a zone id such as 000...0e6 is text, but the
    # Pulumi CLI reads YAML 1.2, where it is a number (and bookingctl refuses it, as it should).
    stack.write_text(yaml.safe_dump(data, default_style='"'))
    return into


SAAS = {"zoneId": "ef" * 16, "fallbackHostname": "salons.instylebookings.co.za", "minTlsVersion": "1.2",
        "zonePlan": "business"}


def saas_project(salons: int, into: Path) -> tuple[Path, int]:
    """A scratch production project on the SaaS path, and how many salon rows its D1 stand-in holds.

    The salons are written as `tenants add` writes them (one row each in `tenants`); nothing about
    them reaches the stack file, which is the point of the path.
    """
    import sqlite3

    tenant_project(0, into)
    stack = into / "Pulumi.production.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"].pop("booking:tenants", None)
    data["config"]["booking:saas"] = SAAS
    stack.write_text(yaml.safe_dump(data, default_style='"'))
    conn = sqlite3.connect(into / "d1.sqlite")
    conn.executescript((REPO / "migrations" / "0001_initial_schema.sql").read_text())
    conn.executemany("INSERT INTO tenants (id, slug, name, hostname) VALUES (?, ?, ?, ?)",
                     [(f"t{i}", f"salon-{i}", f"Salon {i}", f"www.salon-{i}.co.za") for i in range(salons)])
    conn.commit()
    count = conn.execute("SELECT COUNT(*) FROM tenants").fetchone()[0]
    conn.close()
    return into, int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="processes per measurement (median reported)")
    parser.add_argument("--tenants", default="0,100,1000", help="comma-separated tenant counts")
    parser.add_argument("--saas-salons", type=int, default=1000,
                        help="salons onboarded as data on the SaaS path (booking:saas); negative to skip")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    results: dict[str, object] = {}
    print("measuring import floor ...", file=sys.stderr)
    floor, _ = median_seconds([sys.executable, "-c", "import pulumi, pulumi_cloudflare"], args.runs, REPO)
    results["import_floor_s"] = round(floor, 3)
    # bookingctl ends without the interpreter's teardown once the SDK is loaded (bookingctl/cli.py),
    # which a plain `python -c` pays: the floor of that is shown too, so neither ratio hides the other.
    bare, _ = median_seconds([sys.executable, "-c", "import os, pulumi, pulumi_cloudflare; os._exit(0)"],
                             args.runs, REPO)
    results["import_floor_without_teardown_s"] = round(bare, 3)

    stacks = {}
    for stack in ("production", "staging"):
        print(f"planning {stack} ...", file=sys.stderr)
        seconds, outs = median_seconds(plan_cmd(stack), args.runs, REPO)
        stacks[stack] = {"seconds": round(seconds, 3), "ratio_to_floor": round(seconds / floor, 2),
                         "gate_seconds": round(gate_seconds(outs), 3),
                         "resources": len(json.loads(outs[0])["resources"])}
    results["stacks"] = stacks

    scaling = []
    for count in (int(c) for c in args.tenants.split(",") if c.strip()):
        print(f"planning production with {count} tenants ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            # Past what the free plan's 20 widgets of 15 hostnames hold, Turnstile Enterprise.
            project = tenant_project(count, Path(tmp), "enterprise" if count >= 250 else None)
            runs = args.runs if count <= 100 else max(1, args.runs // 2)
            seconds, outs = median_seconds(plan_cmd("production"), runs, project)
        scaling.append({"tenants": count, "resources": len(json.loads(outs[0])["resources"]),
                        "seconds": round(seconds, 3), "gate_seconds": round(gate_seconds(outs), 3)})
    if len(scaling) >= 2:
        base, top = scaling[0], scaling[-1]
        extra = top["resources"] - base["resources"]
        if extra:
            per = (top["seconds"] - base["seconds"]) / extra
            results["ms_per_extra_resource"] = round(per * 1000, 3)
    results["tenant_scaling"] = scaling

    if args.saas_salons >= 0:
        print(f"planning production on the SaaS path with {args.saas_salons} salons as data, interleaved with "
              "the floor and the same stack without booking:saas ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "plain").mkdir()
            (Path(tmp) / "saas").mkdir()
            plain = tenant_project(0, Path(tmp) / "plain")
            project, rows = saas_project(args.saas_salons, Path(tmp) / "saas")
            for warm in (plain, project):  # compile the scratch copies' bytecode once, outside the figures
                subprocess.run(plan_cmd("production"), cwd=warm, capture_output=True, check=True)
            measured = interleaved_medians({
                "floor": ([sys.executable, "-c", "import pulumi, pulumi_cloudflare"], REPO),
                "plain": (plan_cmd("production"), plain),
                "saas": (plan_cmd("production"), project)}, args.runs)
        saas_floor, (plain_s, plain_outs), (seconds, outs) = measured["floor"][0], measured["plain"], measured["saas"]
        results["saas"] = {"salons": rows, "resources": len(json.loads(outs[0])["resources"]),
                           "resources_without_saas": len(json.loads(plain_outs[0])["resources"]),
                           "floor_s": round(saas_floor, 3), "seconds": round(seconds, 3),
                           "seconds_without_saas": round(plain_s, 3),
                           "ratio_to_floor": round(seconds / saas_floor, 2),
                           "ratio_without_saas_to_floor": round(plain_s / saas_floor, 2),
                           "gate_seconds": round(gate_seconds(outs), 3), "target_ratio": 1.2}

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"import floor (import pulumi, pulumi_cloudflare): {floor:.2f} s  (median of {args.runs}); "
          f"{bare:.2f} s of it before the interpreter's teardown")
    for stack, r in stacks.items():
        print(f"bookingctl plan {stack:<10} {r['seconds']:.2f} s  = {r['ratio_to_floor']:.2f}x floor, "
              f"{r['seconds'] / bare:.2f}x without teardown  "
              f"({r['resources']} resources; policy gate {r['gate_seconds']:.3f} s of it)")
    for row in scaling:
        print(f"production + {row['tenants']:>4} tenants: {row['seconds']:6.2f} s  ({row['resources']} resources; "
              f"gate {row['gate_seconds']:.2f} s)")
    if "ms_per_extra_resource" in results:
        print(f"cost per extra resource: {results['ms_per_extra_resource']} ms")
    saas = results.get("saas")
    if isinstance(saas, dict):
        print(f"SaaS path, interleaved runs (floor {saas['floor_s']:.2f} s): production with {saas['salons']} salons "
              f"as data {saas['seconds']:.2f} s = {saas['ratio_to_floor']:.2f}x floor (target {saas['target_ratio']}x; "
              f"{saas['resources']} resources; gate {saas['gate_seconds']:.3f} s); the same stack without "
              f"booking:saas {saas['seconds_without_saas']:.2f} s = {saas['ratio_without_saas_to_floor']:.2f}x floor "
              f"({saas['resources_without_saas']} resources)")


if __name__ == "__main__":
    main()
