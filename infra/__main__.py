"""Entry point of `pulumi preview/up`: read the stack config once, declare, export."""

import pulumi

from infra.config import read_runtime_config
from infra.program import deploy

for _name, _value in deploy(read_runtime_config()).items():
    pulumi.export(_name, _value)
