"""tests/unit/ops/affinity_bake.py's bake with browsers of mixed sizes (most make a few requests, some many), as
real traffic is; everything else as there. Only the browser loop differs."""

from __future__ import annotations

import random

from ops.releases.judge import Signals, judge_signals
from tests.unit.ops.affinity_bake import SETTINGS, Side, _count


def bake(rng: random.Random, *, interval: int = 1, rpm: int = 1200,
         mix: tuple[tuple[int, float], ...] = ((3, 0.9), (20, 0.1)), rate: float = 0.001) -> tuple[str, int, str]:
    share = SETTINGS.canary_percent / 100.0
    sides = {"canary": Side(), "serving": Side()}
    mean = sum(f * p for f, p in mix)
    browser = 0
    for minute in range(1, SETTINGS.bake_minutes + 1):
        for _ in range(round(rpm / mean)):
            name = "canary" if rng.random() < share else "serving"
            side, browser = sides[name], browser + 1
            u, flow = rng.random(), mix[-1][0]
            for f, p in mix:
                if u < p:
                    flow = f
                    break
                u -= p
            side.add(rng, browser, flow, _count(rng, flow, rate), 0, 0, interval)
        c, b = sides["canary"], sides["serving"]
        v = judge_signals(Signals(http=c.http(interval), runtime=c.runtime()), [True] * minute, SETTINGS,
                          final=minute == SETTINGS.bake_minutes,
                          baseline=Signals(http=b.http(interval), runtime=b.runtime()), share=share)
        if v.action != "continue":
            return v.action, minute, v.reason
    raise AssertionError("the final minute always decides")


def rollback_rate(seed: int, runs: int, **kwargs: object) -> float:
    rng = random.Random(seed)
    return sum(bake(rng, **kwargs)[0] == "rollback" for _ in range(runs)) / runs  # type: ignore[arg-type]
