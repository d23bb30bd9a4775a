"""A policy config file is read strictly: a key set twice is refused, as in stack files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookingctl.policy_config import PolicyConfigError, load_policy_config


def test_a_key_set_twice_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "policy-config.json"
    path.write_text('{"pre-deploy-checklist": {"codeReview": false, "codeReview": true}}')
    with pytest.raises(PolicyConfigError, match=r"policy-config.json: key 'codeReview' is set twice"):
        load_policy_config(path)


def test_each_key_once_is_read(tmp_path: Path) -> None:
    path = tmp_path / "policy-config.json"
    path.write_text('{"pre-deploy-checklist": {"codeReview": true}, "backup-retention": "advisory"}')
    assert load_policy_config(path)["pre-deploy-checklist"].properties == {"codeReview": True}
