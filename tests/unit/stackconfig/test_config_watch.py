"""`booking:watch` in a stack file: the thresholds the post-deploy watch reads, and the values refused.

Pure parsing (`stackconfig.files.parse_config`); the watch itself is tested in tests/unit/ops/test_watch_evaluate.py
and, against a real site, in tests/integration/ops/test_watch.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackconfig.files import parse_config
from stackconfig.problems import ConfigError
from tests.helpers import REPO
from tests.helpers.stack_config import BASE, SECRETS


def test_thresholds_come_from_stack_config() -> None:
    flat = {**BASE, "booking:watch": '{"errorRatePercent": 2, "errorWindowSeconds": 120}'}
    cfg = parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)
    assert cfg.watch.error_rate_percent == 2 and cfg.watch.latency_seconds == 2.0
    with pytest.raises(ConfigError, match=r"watch\.errorRatePercent"):
        parse_config({**BASE, "booking:watch": '{"errorRatePercent": 0}'}, set(SECRETS), stack="production",
                     source="Pulumi.production.yaml", project_root=Path(REPO))


def test_every_bad_watch_key_is_reported_at_once_and_a_misspelt_one_gets_its_nearest() -> None:
    flat = {**BASE, "booking:watch": '{"errorRatePercent": 0, "databaseFailures": 2.5, "latencyWindow": 60}'}
    with pytest.raises(ConfigError) as info:
        parse_config(flat, set(SECRETS), stack="production", source="Pulumi.production.yaml", project_root=REPO)
    assert [p.key for p in info.value.problems] == [
        "watch.errorRatePercent", "watch.databaseFailures", "watch.latencyWindow"]
    assert "did you mean booking:watch.latencyWindowSeconds?" in info.value.render()


@pytest.mark.parametrize(("watch", "key"), [
    ('{"errorWindowSeconds": 1e308}', "errorWindowSeconds"),
    ('{"latencyWindowSeconds": Infinity}', "latencyWindowSeconds"),
    ('{"errorRatePercent": NaN}', "errorRatePercent"), ('{"databaseFailures": 2.5}', "databaseFailures"),
    ('{"intervalSeconds": true}', "intervalSeconds"), ('{"errorWindowSeconds": -300}', "errorWindowSeconds"),
])
def test_watch_windows_that_would_switch_a_trigger_off_are_refused(watch: str, key: str) -> None:
    """A window of 1e308 s or infinity never fills, so its trigger could never fire (adversarial 1.57)."""
    with pytest.raises(ConfigError, match=rf"watch\.{key}"):
        parse_config({**BASE, "booking:watch": watch}, set(SECRETS), stack="production",
                     source="Pulumi.production.yaml", project_root=Path(REPO))
