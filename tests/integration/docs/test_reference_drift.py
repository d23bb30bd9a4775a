"""docs/reference/ is generated from the code (scripts/gen_reference.py): a committed file that differs
from what the code renders now fails here, naming the file and the command that rewrites it."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from scripts import gen_reference
from tests.helpers import REPO


@pytest.mark.parametrize("name", sorted(gen_reference.RENDERERS))
def test_a_committed_reference_matches_what_the_code_renders(name: str) -> None:
    path = gen_reference.REFERENCE / name
    rendered = gen_reference.RENDERERS[name]()
    committed = path.read_text() if path.exists() else ""
    diff = "".join(list(difflib.unified_diff(committed.splitlines(True), rendered.splitlines(True),
                                             "committed", "rendered"))[:40])
    assert committed == rendered, (f"{path.relative_to(REPO)} is out of date with the code: run "
                                   f"`{gen_reference.COMMAND}` and commit the result\n{diff}")


def test_the_cli_reference_has_every_command_and_option_of_the_app() -> None:
    """Proof the generator walks the whole command tree: each leaf command's every option appears."""
    import typer.main

    from bookingctl.cli import app

    text = gen_reference.render_cli()
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="bookingctl")
    for path, command, _ in gen_reference._commands(root, ctx, []):
        assert f"## `bookingctl {' '.join(path)}`" in text
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                assert param.opts[0] in text, (path, param.opts)


def test_the_config_reference_names_every_key_of_the_models() -> None:
    text = gen_reference.render_config()
    model = gen_reference._stack_config()
    for name, field in model.model_fields.items():
        assert f"`booking:{field.alias or name}`" in text, name
    assert "`booking:rollout.canaryPercent`" in text and "`booking:watch.intervalSeconds`" in text


def test_the_policy_reference_lists_every_policy_with_its_remediation() -> None:
    from policies.pack import POLICIES

    text = gen_reference.render_policies()
    for policy in POLICIES:
        assert f"\n## {policy.name}\n" in text
        assert str(policy.policy.remediation_steps).split()[0] in text


def test_the_check_mode_names_a_stale_file_and_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(gen_reference, "REFERENCE", tmp_path)
    monkeypatch.setattr(gen_reference, "ROOT", tmp_path.parent)
    assert gen_reference.main([]) == 0
    (tmp_path / "config.md").write_text("edited by hand\n")
    assert gen_reference.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "config.md" in err and gen_reference.COMMAND in err
