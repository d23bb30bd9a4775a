"""The D1 database of one environment."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare


@dataclass(frozen=True)
class DatabaseArgs:
    account_id: str
    name: str
    # Production data must survive a mistaken `pulumi destroy` or a rename in code.
    protect: bool


class Database(pulumi.ComponentResource):
    """A D1 database; protected and retained on delete when `args.protect` is set."""

    database_id: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:database:Database", name, None, opts)
        d1 = cloudflare.D1Database(
            f"{name}-d1",
            account_id=args.account_id,
            name=args.name,
            # The D1 API rejects a null read_replication on create (terraform-provider-cloudflare
            # #6309), so say explicitly that this database has no read replicas.
            read_replication={"mode": "disabled"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.database_id = d1.id
        self.name = d1.name
        self.register_outputs({"databaseId": self.database_id, "name": self.name})
