"""Stack files are read as the Pulumi CLI reads them: duplicate keys, alias bombs and YAML-typed
values are refused with the file, key and line, before any program runs."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

import pytest

from booking_shared.project import Project, ProjectError, load_stack
from tests.helpers import REPO

PRODUCTION = (REPO / "Pulumi.production.yaml").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """The committed project files in a scratch folder, so a test may add stack files."""
    for name in ("Pulumi.yaml", "Pulumi.production.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "__main__.py").write_text("")
    return Project(root=tmp_path, name="appointmentbooking", main=tmp_path / "infra")


def stack(project: Project, text: str, name: str = "adv") -> str:
    (project.root / f"Pulumi.{name}.yaml").write_text(text)
    return name


def refused(project: Project, name: str) -> str:
    with pytest.raises(ProjectError) as info:
        load_stack(project, name)
    return str(info.value)


def test_committed_stacks_load() -> None:
    from booking_shared.project import find_project

    committed = find_project(REPO)
    for name in ("production", "staging"):
        assert load_stack(committed, name).flat["booking:environment"] == name


# --- duplicate keys (D11) -------------------------------------------------------------------

def test_plain_secret_followed_by_a_secure_entry_is_refused_naming_the_key_and_both_lines(project: Project) -> None:
    text = PRODUCTION + ("  booking:paystackSecretKey: sk_live_REALKEY0123456789\n"
                         "  booking:paystackSecretKey:\n    secure: v1:abc\n")
    lines = text.splitlines()
    first = lines.index("  booking:paystackSecretKey: sk_live_REALKEY0123456789") + 1
    message = refused(project, stack(project, text))
    assert "`booking:paystackSecretKey` is set on line " + f"{first} and again on line {first + 1}" in message
    assert "Pulumi.adv.yaml" in message
    assert "sk_live_REALKEY" not in message


def test_second_domain_is_refused_rather_than_silently_winning(project: Project) -> None:
    message = refused(project, stack(project, PRODUCTION + "  booking:domain: evil.example.com\n"))
    assert "`booking:domain` is set on line" in message and "keep one" in message


def test_duplicate_key_inside_a_tenant_is_refused(project: Project) -> None:
    text = PRODUCTION + ("  booking:tenants:\n    - slug: a\n      hostname: a.example.co.za\n"
                         "      hostname: b.example.co.za\n      zoneId: " + "ab" * 16 + "\n")
    assert "`hostname` is set on line" in refused(project, stack(project, text))


def test_duplicate_top_level_config_section_is_refused(project: Project) -> None:
    assert "`config` is set on line" in refused(project, stack(project, PRODUCTION + "config: {}\n"))


# --- aliases and size (D12) -----------------------------------------------------------------

def _bomb(levels: int = 9) -> str:
    lines = ["bomb:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_expansion(project: Project) -> None:
    started = time.monotonic()
    message = refused(project, stack(project, _bomb() + PRODUCTION + "  other:x: *a8\n"))
    assert time.monotonic() - started < 5
    assert "more than 100,000 values" in message


def test_alias_bomb_outside_config_is_refused_too(project: Project) -> None:
    # yaml.v3 (the Pulumi CLI) refuses excessive aliasing anywhere in the document.
    assert "aliases expand" in refused(project, stack(project, _bomb() + PRODUCTION))


def test_a_file_of_too_many_plain_values_is_refused_for_its_size_not_for_aliases_it_does_not_have(
        project: Project) -> None:
    message = refused(project, stack(project, PRODUCTION + "  other:wide: [" + ",".join(["1"] * 120_000) + "]\n"))
    assert "holds more than 100,000 values" in message
    assert "alias" not in message


def test_recursive_alias_is_refused(project: Project) -> None:
    assert "recursive alias" in refused(project, stack(project, PRODUCTION + "  other:x: &loop [*loop]\n"))


def test_oversized_stack_file_is_refused_unread(project: Project) -> None:
    text = PRODUCTION + "  other:padding: " + "x" * (1024 * 1024) + "\n"
    assert "larger than 1,048,576 bytes" in refused(project, stack(project, text))


def test_anchors_and_merge_keys_within_bounds_still_load(project: Project) -> None:
    text = ("defaults: &dom www.instylehairboutique.co.za\n"
            + PRODUCTION.replace("booking:domain: www.instylehairboutique.co.za", "booking:domain: *dom")
            + "  booking:watch:\n    <<: {errorRatePercent: 5}\n    intervalSeconds: 30\n")
    settings = load_stack(project, stack(project, text))
    assert settings.flat["booking:domain"] == "www.instylehairboutique.co.za"
    assert '"intervalSeconds": 30' in settings.flat["booking:watch"]


def test_non_utf8_stack_file_is_refused(project: Project) -> None:
    (project.root / "Pulumi.adv.yaml").write_bytes(PRODUCTION.encode() + b"  other:x: \xff\xfe\n")
    assert "not UTF-8" in refused(project, "adv")


# --- YAML-typed values (D13) ----------------------------------------------------------------

@pytest.mark.parametrize(("line", "key", "kind"), [
    ("  booking:x: 2026-10-01\n", "booking:x", "a date"),
    ("  other:when: 2026-01-01 10:00:00\n", "other:when", "a date and time"),
    ("  other:blob: !!binary aGVsbG8=\n", "other:blob", "binary data"),
    ("  other:set: !!set {a, b}\n", "other:set", "!!set"),
    ("  other:flag: yes\n", "other:flag", "YAML 1.1 boolean"),
    ("  other:mode: 0755\n", "other:mode", "YAML 1.1 number"),
    ("  other:duration: 1:30\n", "other:duration", "YAML 1.1 number"),
    ("  other:zone: 12e45678901234567890123456789012\n", "other:zone", "a number in YAML 1.2"),
    # Floats whose exponent has no sign (or which have no dot) are text to PyYAML, numbers to yaml.v3.
    ("  other:ratio: 1.5e3\n", "other:ratio", "a number in YAML 1.2"),
    ("  other:ratio: .5e3\n", "other:ratio", "a number in YAML 1.2"),
    ("  other:ratio: 1e+5\n", "other:ratio", "a number in YAML 1.2"),
])
def test_yaml_typed_values_are_refused_naming_the_key_and_asking_for_quotes(
        project: Project, line: str, key: str, kind: str) -> None:
    message = refused(project, stack(project, PRODUCTION + line))
    assert f"{key} (line " in message and kind in message and "quote" in message


def test_unquoted_compatibility_date_is_refused_with_the_quoted_form(project: Project) -> None:
    text = PRODUCTION.replace('booking:compatibilityDate: "2026-10-01"', "booking:compatibilityDate: 2026-10-01")
    message = refused(project, stack(project, text))
    assert 'quote it, e.g. booking:compatibilityDate: "2026-10-01"' in message


def test_a_tenant_hostname_that_yaml_reads_as_a_date_names_its_path(project: Project) -> None:
    text = PRODUCTION + "  booking:tenants:\n    - slug: a\n      hostname: 2026-01-01\n      zoneId: x\n"
    assert "booking:tenants[0].hostname (line" in refused(project, stack(project, text))


def test_a_typed_value_under_a_secret_key_is_not_echoed(project: Project) -> None:
    message = refused(project, stack(project, PRODUCTION + "  booking:whatsappToken: 2026-01-01\n"))
    assert "2026-01-01" not in message and "booking:whatsappToken" in message


def test_every_typed_value_is_reported_at_once(project: Project) -> None:
    message = refused(project, stack(project, PRODUCTION + "  other:a: 2026-01-01\n  other:b: yes\n"))
    assert "2 problem(s)" in message and "other:a (line" in message and "other:b (line" in message


def test_dates_outside_config_are_read_as_text(project: Project) -> None:
    settings = load_stack(project, stack(project, "created: 2026-01-01\n" + PRODUCTION))
    assert settings.flat["booking:compatibilityDate"] == "2026-10-01"


# --- secure values must be ciphertext (D14) -------------------------------------------------

SYMMETRIC = "v1:AAECAwQFBgcICQoL:" + base64.b64encode(b"sealed-bytes-with-gcm-tag-0").decode()
SERVICE = "AAABAFeuJ0fR0k2SFMSVoJZI+0GlNYDaggXpRgu5sD0bpo+EnF1p4w=="


@pytest.mark.parametrize("value", ["''", "12345", "null", "sk_live_LEAKCANARY0123456789", "v1:abc",
                                   "v1:AAAAdGVzdA==:Y2lwaGVydGV4dA==", "LEAKCANARYplaintexttoken"])
def test_secure_value_that_cannot_be_ciphertext_is_refused_without_echoing_it(project: Project, value: str) -> None:
    message = refused(project, stack(project, PRODUCTION + f"  booking:paystackSecretKey:\n    secure: {value}\n"))
    assert "booking:paystackSecretKey" in message and "not Pulumi ciphertext" in message
    assert "pulumi config set --secret booking:paystackSecretKey" in message
    if len(value) > 5:
        assert value not in message and "LEAKCANARY" not in message


@pytest.mark.parametrize("value", [SYMMETRIC, SERVICE])
def test_passphrase_and_pulumi_cloud_ciphertext_are_accepted(project: Project, value: str) -> None:
    settings = load_stack(project, stack(project, PRODUCTION + f"  booking:paystackSecretKey:\n    secure: {value}\n"))
    assert settings.flat["booking:paystackSecretKey"] == "[secret]"
    assert "booking:paystackSecretKey" in settings.secret_keys


# --- a hostname belongs to one environment (D5) ---------------------------------------------

STAGING = (REPO / "Pulumi.staging.yaml").read_text()
PROD_HOST = "www.instylehairboutique.co.za"
TENANT = "  booking:tenants:\n    - slug: instyle\n      hostname: {host}\n      zoneId: " + "ab" * 16 + "\n"


def test_staging_tenant_on_productions_hostname_is_refused_naming_both_files(project: Project) -> None:
    text = STAGING.replace("booking:workerRoute: /*", "booking:workerRoute: /api/*") + TENANT.format(host=PROD_HOST)
    message = refused(project, stack(project, text, "advhijack"))
    assert "booking:tenants[0].hostname" in message and "Pulumi.production.yaml (production)" in message
    assert "Pulumi.advhijack.yaml" in message


def test_staging_domain_equal_to_productions_is_refused(project: Project) -> None:
    text = STAGING.replace("booking:domain: staging.instylehairboutique.co.za", f"booking:domain: {PROD_HOST}")
    assert "booking:domain: found 'www.instylehairboutique.co.za', which Pulumi.production.yaml" in refused(
        project, stack(project, text, "advstg"))


def test_production_is_refused_while_a_staging_stack_claims_its_hostname(project: Project) -> None:
    # The overlap is the problem, whichever file is planned: a hostname belongs to one environment.
    stack(project, STAGING + TENANT.format(host=PROD_HOST.upper()), "advhijack")
    assert "Pulumi.advhijack.yaml (staging)" in refused(project, "production")


def test_stacks_of_one_environment_may_share_hostnames(project: Project) -> None:
    settings = load_stack(project, stack(project, PRODUCTION, "production-eu"))
    assert settings.flat["booking:domain"] == PROD_HOST


def test_an_unreadable_other_stack_file_does_not_block_this_stacks_config(project: Project) -> None:
    stack(project, "config: [\n", "broken")
    assert load_stack(project, "staging").flat["booking:environment"] == "staging"


# --- a SaaS zone belongs to one environment -------------------------------------------------

def saas(zone: str, fallback: str = "salons.instylebookings.co.za") -> str:
    return f"  booking:saas:\n    zoneId: {zone}\n    fallbackHostname: {fallback}\n"


def test_staging_saas_zone_equal_to_a_production_zone_is_refused_naming_both(project: Project) -> None:
    # Production's own zone: a staging '*/*' route there would take www.instylehairboutique.co.za.
    message = refused(project, stack(project, STAGING + saas("1a2b3c4d5e6f708192a3b4c5d6e7f809"), "advsaas"))
    assert "booking:saas.zoneId" in message and "Pulumi.production.yaml (production) uses as booking:zoneId" in message


def test_staging_saas_zone_equal_to_productions_saas_zone_is_refused(project: Project) -> None:
    (project.root / "Pulumi.production.yaml").write_text(PRODUCTION + saas("ef" * 16))
    message = refused(project, stack(project, STAGING + saas("ef" * 16, "salons-staging.instylebookings.co.za"),
                                     "advsaas"))
    assert "uses as booking:saas.zoneId" in message


def test_staging_on_productions_saas_fallback_hostname_is_refused(project: Project) -> None:
    (project.root / "Pulumi.production.yaml").write_text(PRODUCTION + saas("ef" * 16))
    message = refused(project, stack(project, STAGING + saas("cd" * 16), "advsaas"))
    assert "booking:saas.fallbackHostname" in message and "Pulumi.production.yaml (production)" in message


def test_each_environment_with_its_own_saas_zone_loads(project: Project) -> None:
    (project.root / "Pulumi.production.yaml").write_text(PRODUCTION + saas("ef" * 16))
    settings = load_stack(project, stack(project, STAGING + saas("cd" * 16, "salons-staging.instylebookings.co.za"),
                                         "stg2"))
    assert '"zoneId": "' + "cd" * 16 in settings.flat["booking:saas"]
