#!/usr/bin/env python3
"""Benchmark of `bookingctl monitor perf` against the guide's own `performance-monitor.sh`.

    bench/monitor_bench.py [--runs 3]

Both sample the same three URLs (root, /book/instylehairboutique, /api/health) five times each on
one local HTTP server on 127.0.0.1, in the same run. The guide's script is a verbatim copy kept in
bench/fixtures/performance-monitor.sh (the guide itself lives outside this repository), its URLs
pointed at the local server, and given the `curl-format.txt` it expects; it needs bash, curl and
bc. Reports wall time (median of --runs) and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and not __package__:  # started as a file: again as a module, in the venv
    from _rerun import rerun_as_module

    rerun_as_module(__file__)

from tests.helpers.http_site import Site, serving  # noqa: E402

GUIDE_SCRIPT = Path(__file__).resolve().parent / "fixtures" / "performance-monitor.sh"


def guide_script(base: str) -> str:
    return GUIDE_SCRIPT.read_text(encoding="utf-8").replace("https://www.instylehairboutique.co.za", base)


def timed(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # 1 = a threshold breached, still a complete run
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    missing = [tool for tool in ("bash", "curl", "bc") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"the guide's script needs {', '.join(missing)}: install it to run this comparison")
    with serving(Site()) as site, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        script = work / "performance-monitor.sh"
        script.write_text(guide_script(site.url), encoding="utf-8")
        (work / "curl-format.txt").write_text("http_code=%{http_code}\ntime_total=%{time_total}\n")
        urls = [site.url, f"{site.url}/book/instylehairboutique", f"{site.url}/api/health"]
        ours_cmd = [str(Path(sys.executable).parent / "bookingctl"), "monitor", "perf", "--samples", "5"]
        for url in urls:
            ours_cmd += ["--url", url]
        guide_times, our_times = [], []
        for _ in range(args.runs):
            guide_times.append(timed(["bash", str(script)], work))
            our_times.append(timed(ours_cmd, work))
        requests = len(site.hits)
    guide, ours = statistics.median(guide_times), statistics.median(our_times)
    print(f"3 URLs x 5 samples on 127.0.0.1 ({requests} requests served in all), median of {args.runs}:")
    print(f"guide's performance-monitor.sh: {guide:.2f} s")
    print(f"bookingctl monitor perf:        {ours:.2f} s")
    print(f"ratio: bookingctl takes {ours / guide:.3f} of the script's time ({guide / ours:.0f}x faster)")


if __name__ == "__main__":
    main()
