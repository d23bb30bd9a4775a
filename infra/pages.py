"""The Pages project that serves the booking UI and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.naming import DB_BINDING, ENVIRONMENT_VAR


@dataclass(frozen=True)
class BookingSiteArgs:
    account_id: str
    project_name: str
    production_branch: str
    environment: str
    domain: str
    compatibility_date: str
    database_id: pulumi.Input[str]


def _deployment_config(args: BookingSiteArgs) -> cloudflare.PagesProjectDeploymentConfigsProductionArgsDict:
    return {
        "compatibility_date": args.compatibility_date,
        "d1_databases": {DB_BINDING: {"id": args.database_id}},
        "env_vars": {
            ENVIRONMENT_VAR: {"type": "plain_text", "value": args.environment},
            "API_BASE_URL": {"type": "plain_text", "value": f"https://{args.domain}/api"},
        },
    }


class BookingSite(pulumi.ComponentResource):
    """A Pages project with the environment's D1 binding in production and preview deploys."""

    project_name: pulumi.Output[str]
    subdomain: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: BookingSiteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:pages:BookingSite", name, None, opts)
        # Preview deploys of this project get the same database as production deploys of it:
        # each stack's project only ever sees its own environment's data.
        project = cloudflare.PagesProject(
            f"{name}-project",
            account_id=args.account_id,
            name=args.project_name,
            production_branch=args.production_branch,
            deployment_configs={
                "production": _deployment_config(args),
                "preview": _deployment_config(args),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.project_name = project.name
        self.subdomain = project.subdomain
        self.url = project.subdomain.apply(lambda sub: f"https://{sub}")
        self.register_outputs({"projectName": self.project_name, "url": self.url})
