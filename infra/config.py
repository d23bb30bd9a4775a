"""The stack config as the Pulumi engine hands it to this program run.

The models, their checks and their problem rendering live in `stackconfig` (below this package,
free of Pulumi); this module only reads the engine's config map and turns a `ConfigError` into
the engine's own error. The names re-exported below keep `infra.config.StackConfig` and friends
importable for code written against the old module.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from booking_shared import CHECKOUT
from stackconfig.files import parse_config
from stackconfig.model import WORKER_BUNDLE_MAX_BYTES, ServedZone, StackConfig
from stackconfig.problems import ConfigError, ConfigProblem
from stackconfig.sections import (
    DEFAULT_RATE_LIMIT_NAMESPACE,
    PRODUCTION_ROLLOUT_MAX,
    RULE_PERIODS,
    RULE_TIMEOUTS,
    EndpointLimit,
    RateLimits,
    Rollout,
    SaasConfig,
    Tenant,
    TurnstileConfig,
    UnsafeMigrationApproval,
    WorkerLimit,
)
from stackconfig.zones import zone_plan_problems

__all__ = [
    "DEFAULT_RATE_LIMIT_NAMESPACE",
    "PRODUCTION_ROLLOUT_MAX",
    "RULE_PERIODS",
    "RULE_TIMEOUTS",
    "WORKER_BUNDLE_MAX_BYTES",
    "ConfigError",
    "ConfigProblem",
    "EndpointLimit",
    "EngineConfigError",
    "RateLimits",
    "Rollout",
    "SaasConfig",
    "ServedZone",
    "StackConfig",
    "Tenant",
    "TurnstileConfig",
    "UnsafeMigrationApproval",
    "WorkerLimit",
    "parse_config",
    "project_root",
    "read_runtime_config",
    "zone_plan_problems",
]


class EngineConfigError(ConfigError, pulumi.RunError):
    """A `ConfigError` raised inside a program run: a `RunError`, so under `pulumi up` the language
    host prints the message alone (every bad key with its fix) instead of a Python traceback."""


def read_runtime_config() -> StackConfig:
    """Parse the configuration the Pulumi engine handed to this program run.

    Used by `infra/__main__.py` under `pulumi preview/up` and under the offline planner alike.
    """
    stack = pulumi.get_stack()
    # The language host loads the whole stack config into this map before the program starts;
    # reading the map (not key by key) is what lets us report misspelt, unknown keys.
    flat = dict(runtime_config.CONFIG.get())
    if not flat:  # an older host that passes config through the environment only
        flat = dict(runtime_config.get_config_env())
    secret_keys = [k for k in flat if pulumi.runtime.is_config_secret(k)]
    secret_keys += runtime_config.get_config_secret_keys_env()
    try:
        return parse_config(flat, secret_keys, stack=stack, source=f"Pulumi.{stack}.yaml",
                            project_root=project_root(pulumi.get_root_directory()), project=pulumi.get_project())
    except ConfigError as exc:
        raise EngineConfigError(exc.source, exc.stack, exc.problems) from None


def project_root(reported: str | None) -> Path:
    """The folder holding Pulumi.yaml, where relative paths in config (workerBundle) start.

    Older language hosts never set the root directory (the SDK then reports a dummy value), and
    the program's working directory depends on `main:`; so trust only a folder that really holds
    Pulumi.yaml: the reported one, else the working directory or a parent, else infra/'s parent.
    """
    candidates = [Path(reported)] if reported else []
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents, CHECKOUT]
    for folder in candidates:
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return cwd
