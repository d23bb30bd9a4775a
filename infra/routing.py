"""One public hostname: its proxied DNS record, the Worker route and the Pages custom domain.

Requests for `<hostname><route>` run the API Worker first; what the Worker does not answer
itself it passes to the origin, which the proxied CNAME points at the Pages project. The same
component serves the main domain and every extra tenant hostname, each in its own zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare


@dataclass(frozen=True)
class SiteHostnameArgs:
    account_id: str
    zone_id: str
    hostname: str
    route_path: str
    worker_name: pulumi.Input[str]
    pages_project_name: pulumi.Input[str]
    pages_subdomain: pulumi.Input[str]


class SiteHostname(pulumi.ComponentResource):
    """DNS, Worker route and Pages domain for one hostname."""

    route_pattern: str

    def __init__(self, name: str, args: SiteHostnameArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:routing:SiteHostname", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.route_pattern = f"{args.hostname}{args.route_path}"

        cloudflare.DnsRecord(
            f"{name}-dns",
            zone_id=args.zone_id,
            name=args.hostname,
            type="CNAME",
            content=args.pages_subdomain,
            # Proxied, or the Worker route never sees the request and the origin is exposed.
            proxied=True,
            ttl=1,  # 1 = automatic, the only TTL a proxied record takes
            comment="managed by pulumi (appointmentbooking)",
            opts=child,
        )
        cloudflare.PagesDomain(
            f"{name}-pages-domain",
            account_id=args.account_id,
            project_name=args.pages_project_name,
            name=args.hostname,
            opts=child,
        )
        cloudflare.WorkersRoute(
            f"{name}-route",
            zone_id=args.zone_id,
            pattern=self.route_pattern,
            script=args.worker_name,
            opts=child,
        )
        self.register_outputs({"routePattern": self.route_pattern})
