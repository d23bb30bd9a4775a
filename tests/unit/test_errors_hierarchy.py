"""Every exception the project defines is an `InputError` (exit 2) or an `OperationFailed` (exit 1),
both from `booking_shared/errors.py`, a leaf module: the CLI classifies by those two bases alone."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys

import pytest

from booking_shared.errors import BookingError, InputError, OperationFailed
from bookingctl.errors import EXIT_FAILED, EXIT_USAGE, classify
from tests.helpers import REPO

PACKAGES = ("booking_shared", "stackconfig", "infra", "ops", "policies", "bookingctl")

# Defined in the project but outside the hierarchy, each with why.
OUTSIDE = {
    # Private signals, each caught in the function that raises it and never seen by a caller:
    # raised by json's object_pairs_hook on a repeated key, turned into a PolicyConfigError beside it
    "bookingctl.policy_config._DuplicateKey",
    # a statement ended the migration runner's transaction; turned into a MigrationError beside it
    "ops.database.migrations._TransactionEnded",
    # a rehearsed statement failed, its problem already recorded; ends that migration's rehearsal
    "ops.database.rehearsal._Failed",
    # SIGTERM, not an error: a BaseException as KeyboardInterrupt is, so `except Exception` cannot
    # swallow it; MappedGroup catches it and exits 143
    "bookingctl.errors.Terminated",
}


# The exit code each class had when the CLI classified by (module, class) names, before the
# hierarchy: an input error of an operation's family (BackupInputError is a BackupError) stays 2.
EXIT_BEFORE = {
    "booking_shared.project.ProjectError": EXIT_USAGE,
    "booking_shared.project.StackFileError": EXIT_USAGE,
    "booking_shared.wrangler_config.WranglerConfigError": EXIT_USAGE,
    "stackconfig.problems.ConfigError": EXIT_USAGE,
    "infra.config.EngineConfigError": EXIT_USAGE,
    "bookingctl.policy_config.PolicyConfigError": EXIT_USAGE,
    "bookingctl.diff.DiffError": EXIT_USAGE,
    "ops.targets.TargetError": EXIT_USAGE,
    "ops.targets.MissingTokenError": EXIT_USAGE,
    "ops.database.migrations.MigrationFileError": EXIT_USAGE,
    "ops.backups.manifest.BackupInputError": EXIT_USAGE,
    "ops.backups.manifest.BackupNotFound": EXIT_USAGE,
    "ops.releases.quarantine.QuarantineRecordError": EXIT_USAGE,
    "ops.releases.quarantine.QuarantinedError": EXIT_USAGE,
    "ops.database.migration_check.CheckError": EXIT_USAGE,
    "ops.database.serving.CorpusError": EXIT_USAGE,
    "ops.tenants.tenant_restore.TenantRestoreInputError": EXIT_USAGE,
    "ops.tenants.tenant_model.TenantInputError": EXIT_USAGE,
    "ops.observation.doctor_model.DoctorInputError": EXIT_USAGE,
    "ops.database.seed.SeedError": EXIT_USAGE,
    "ops.localdev.RuntimeMissingError": EXIT_USAGE,
    "ops.backups.manifest.BackupError": EXIT_FAILED,
    "ops.backups.manifest.ManifestError": EXIT_FAILED,
    "ops.database.migrations.MigrationError": EXIT_FAILED,
    "ops.database.migration_check.UnsafeMigrationError": EXIT_FAILED,
    "ops.releases.rollback.RollbackError": EXIT_FAILED,
    "ops.releases.rollback.SecretsChangedError": EXIT_FAILED,
    "ops.releases.canary.CanaryStopped": EXIT_FAILED,
    "bookingctl.gate.PolicyPackError": EXIT_FAILED,
    "ops.releases.hooks.DeployHookError": EXIT_FAILED,
    "ops.http.HttpError": EXIT_FAILED,
    "ops.targets.UncertainWriteError": EXIT_FAILED,
    "ops.tenants.tenant_restore.TenantRestoreError": EXIT_FAILED,
    "ops.tenants.tenant_model.TenantError": EXIT_FAILED,
    "ops.localdev.LocalDevError": EXIT_FAILED,
}


def project_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined at module level in the project, by `module.Class`.

    Imports every module but the `__main__` ones, which run the Pulumi program, serve the policy
    pack or start the CLI when imported."""
    for package in PACKAGES:
        for found in pkgutil.walk_packages([str(REPO / package)], f"{package}."):
            if not found.name.endswith(".__main__"):
                importlib.import_module(found.name)
    return {f"{name}.{cls.__name__}": cls
            for name, module in sorted(sys.modules.items()) if name.split(".")[0] in PACKAGES
            for cls in vars(module).values()
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == name}


def test_every_exception_the_project_defines_is_an_input_error_or_an_operation_failure() -> None:
    found = project_exceptions()
    assert len(found) > 40, sorted(found)  # the walk found the project (47 classes when written)
    # BookingError itself only roots the two: raised bare, the CLI would call it a bug (exit 1).
    outside = sorted(name for name, cls in found.items()
                     if not issubclass(cls, (InputError, OperationFailed)) and cls is not BookingError
                     and name not in OUTSIDE)
    assert not outside, (f"{outside}: derive each from InputError (bad input, exit 2) or OperationFailed (the "
                         "operation failed, exit 1) in booking_shared/errors.py, or list it in OUTSIDE saying why "
                         "it never reaches a caller")
    assert found.keys() >= OUTSIDE, f"{sorted(OUTSIDE - found.keys())} no longer exist: drop them from OUTSIDE"


def test_the_classes_left_outside_are_private_or_signals() -> None:
    found = project_exceptions()
    public_errors = sorted(name for name in OUTSIDE if not name.rpartition(".")[2].startswith("_")
                           and issubclass(found[name], Exception))
    assert not public_errors, f"{public_errors}: an error a caller can meet belongs in the hierarchy"


@pytest.mark.parametrize(("name", "code"), sorted(EXIT_BEFORE.items()))
def test_each_exception_exits_as_it_did_before_the_hierarchy(name: str, code: int) -> None:
    # Built past each class's own constructor and `render`, which differ: only the type decides the code.
    probe = type(name, (project_exceptions()[name],), {"render": None})
    assert classify(BaseException.__new__(probe))[0] == code


def test_an_input_error_of_an_operations_family_is_still_caught_as_that_family() -> None:
    from ops.backups.backups import BackupError, BackupNotFound
    from ops.database.migrations import MigrationError, MigrationFileError
    from ops.tenants.tenant_restore import TenantRestoreError, TenantRestoreInputError

    assert issubclass(BackupNotFound, BackupError)
    assert issubclass(MigrationFileError, MigrationError)
    assert issubclass(TenantRestoreInputError, TenantRestoreError)


def test_the_cli_names_are_the_two_bases() -> None:
    from bookingctl.errors import Failed, UsageError

    assert (UsageError, Failed) == (InputError, OperationFailed)
    assert issubclass(InputError, BookingError) and issubclass(OperationFailed, BookingError)
    assert not issubclass(InputError, OperationFailed) and not issubclass(OperationFailed, InputError)


def test_the_errors_module_imports_only_the_standard_library() -> None:
    """A leaf: any layer can raise these without loading another (as pip's exceptions.py)."""
    tree = ast.parse((REPO / "booking_shared" / "errors.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    outside = sorted(m for m in imported if m.split(".")[0] not in sys.stdlib_module_names)
    assert not outside, f"booking_shared/errors.py imports {outside}: it must import the standard library only"
