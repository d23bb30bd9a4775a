"""tests/unit/ops/affinity_bake.py's bake with browsers of mixed sizes (most make a few requests, some many), as
real traffic is; everything else as there. Only the browser loop differs."""

from __future__ import annotations

import random

from tests.unit.ops.affinity_bake import SETTINGS, Side, _count, judged
from tests.unit.ops.affinity_bake import rollback_rate as bake_rollback_rate


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
        v = judged(sides, {"canary": interval, "serving": interval}, minute, share)
        if v.action != "continue":
            return v.action, minute, v.reason
    raise AssertionError("the final minute always decides")


def rollback_rate(seed: int, runs: int, **kwargs: object) -> float:
    return bake_rollback_rate(seed, runs, bake_with=bake, **kwargs)
