"""Monitoring as code: a Cloudflare Health Check on the API, and who is told when it fails.

Health Checks need a paid zone plan (Pro or above): config refuses `booking:healthCheck` on a zone whose
`booking:zonePlan` is free (infra/config.py, zone_plan_problems), so this component is only declared
where the zone can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

# Cloudflare's alert type for Health Check status changes (provider docs, notification_policy).
HEALTH_ALERT = "health_check_status_notification"


@dataclass(frozen=True)
class MonitoringArgs:
    account_id: str
    zone_id: str
    domain: str
    environment: str
    # Where alerts go; None: no notification policy (the guide alerts on production only).
    alert_email: str | None


class Monitoring(pulumi.ComponentResource):
    """Health Check of https://<domain>/api/health, and an email alert when it turns unhealthy."""

    health_check_id: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:monitoring:Monitoring", name, None, opts)
        check = cloudflare.Healthcheck(
            f"{name}-health-check",
            zone_id=args.zone_id,
            name=f"appointmentbooking-{args.environment}-api-health",
            description=f"GET https://{args.domain}/api/health answers 200 with status ok (the health contract)",
            address=args.domain,
            type="HTTPS",
            http_config={
                "path": "/api/health",
                "method": "GET",
                "port": 443,
                "expected_codes": ["200"],
                # The Worker answers 200 only with a healthy body, but a proxy or a cached page could
                # answer 200 too; the body proves the Worker and its database responded.
                "expected_body": '"status":"ok"',
                "follow_redirects": False,
            },
            interval=60,
            timeout=5,
            retries=2,
            consecutive_fails=2,
            consecutive_successes=2,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.alert_email:
            cloudflare.NotificationPolicy(
                f"{name}-health-alert",
                account_id=args.account_id,
                name=f"appointmentbooking {args.environment}: API health check unhealthy",
                description="The guide's critical alert: /api/health failing from Cloudflare's edge",
                alert_type=HEALTH_ALERT,
                enabled=True,
                filters={"health_check_ids": [check.id], "statuses": ["Unhealthy"]},
                mechanisms={"emails": [{"id": args.alert_email}]},
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.health_check_id = check.id
        self.register_outputs({"healthCheckId": self.health_check_id})
