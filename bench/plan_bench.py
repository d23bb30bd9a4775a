"""Benchmark of `bookingctl plan` (plan + policy gate), against the cost of importing the SDKs it needs.

    venv/bin/python bench/plan_bench.py [--runs 5] [--tenants 0,100,1000] [--json]

Floor: `python -c "import pulumi, pulumi_cloudflare"`, the least any plan can cost. Each figure is
the median wall time of `--runs` fresh processes, all measured in this one run, so machine load
affects floor and plans alike. Tenant scaling plans a scratch copy of the production stack with
N synthetic tenants (3 cloud resources and 1 component each) and reports the cost per extra
resource. Targets (issue #2): plan <= 1.5x the floor; 1,000 tenants in under 30 s.
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


def plan_cmd(stack: str) -> list[str]:
    return [BOOKINGCTL, "plan", stack, "--format", "json", "--policy-config", EVIDENCE]


def gate_seconds(outs: list[str]) -> float:
    return statistics.median(json.loads(out)["policyGate"]["seconds"] for out in outs)


def tenant_project(count: int, into: Path) -> Path:
    """A scratch copy of the project whose production stack serves `count` extra tenants."""
    for name in ("Pulumi.yaml", "Pulumi.production.yaml"):
        shutil.copy(REPO / name, into / name)
    for folder in ("infra", "worker", "policies"):
        shutil.copytree(REPO / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__"))
    stack = into / "Pulumi.production.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["booking:tenants"] = [
        {"slug": f"salon-{i}", "hostname": f"www.salon-{i}.co.za", "zoneId": f"{i:032x}"} for i in range(count)
    ]
    # Every scalar quoted: PyYAML writes YAML 1.1, where a zone id such as 000...0e6 is text, but the
    # Pulumi CLI reads YAML 1.2, where it is a number (and bookingctl refuses it, as it should).
    stack.write_text(yaml.safe_dump(data, default_style='"'))
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="processes per measurement (median reported)")
    parser.add_argument("--tenants", default="0,100,1000", help="comma-separated tenant counts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    results: dict[str, object] = {}
    print("measuring import floor ...", file=sys.stderr)
    floor, _ = median_seconds([sys.executable, "-c", "import pulumi, pulumi_cloudflare"], args.runs, REPO)
    results["import_floor_s"] = round(floor, 3)

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
            project = tenant_project(count, Path(tmp))
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

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"import floor (import pulumi, pulumi_cloudflare): {floor:.2f} s  (median of {args.runs})")
    for stack, r in stacks.items():
        print(f"bookingctl plan {stack:<10} {r['seconds']:.2f} s  = {r['ratio_to_floor']:.2f}x floor  "
              f"({r['resources']} resources; policy gate {r['gate_seconds']:.3f} s of it)")
    for row in scaling:
        print(f"production + {row['tenants']:>4} tenants: {row['seconds']:6.2f} s  ({row['resources']} resources; "
              f"gate {row['gate_seconds']:.2f} s)")
    if "ms_per_extra_resource" in results:
        print(f"cost per extra resource: {results['ms_per_extra_resource']} ms")


if __name__ == "__main__":
    main()
