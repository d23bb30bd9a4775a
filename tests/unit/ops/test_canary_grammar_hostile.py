"""The deployment-message grammar `bookingctl release status` reads (ops/releases/canary.py)."""

from __future__ import annotations

from ops.releases.canary import in_progress, last_verdict, split_message

PULUMI = "deployed by pulumi up; migrations 0123456789ab"
V, W = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def test_a_hand_written_message_that_starts_with_canary_of_is_not_a_verdict() -> None:
    # Someone deploys by hand with a message of their own; the grammar has three verdict forms
    # ("rolled back: ", "promoted", "ended: "), but anything starting "canary of " is taken as one.
    history = [(W, "canary of the new booking form, by hand for the demo"), (V, "plain deploy")]
    assert last_verdict(history) is None


def test_a_split_message_with_a_trailing_newline_is_still_one_line() -> None:
    # `$` in _SPLIT matches before a trailing newline: an annotation written by someone else with a
    # newline passes as the canary's own split message and is echoed.
    assert in_progress(split_message(V, 10) + "\n") is None


def test_a_verdict_names_a_version_the_deployment_history_knows() -> None:
    # A message mimicking the canary's promotion of a version that never took traffic here.
    history = [(V, f"canary of {W} promoted"), (V, "plain deploy")]
    verdict = last_verdict(history)
    assert verdict is None or W not in verdict or any(sole == W for sole, _ in history)
