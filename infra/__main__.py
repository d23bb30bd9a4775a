"""Entry point of `pulumi preview/up`: read the stack config once, declare, export.

A bad config raises `ConfigError` (a `pulumi.RunError`): the engine prints every bad key with
its fix and stops before any resource is registered.
"""

import pulumi

from infra.config import project_root, read_runtime_config
from infra.program import declare_stack

for _name, _value in declare_stack(read_runtime_config(), project_root(pulumi.get_root_directory())).items():
    pulumi.export(_name, _value)
