"""Cloudflare for SaaS: one zone that serves every salon's own hostname through the API Worker.

A salon publishes a CNAME from its hostname to the fallback hostname; Cloudflare then proxies the
custom hostname (created per salon by `bookingctl tenants add`, as data, not as resources of this
stack) to the zone's fallback origin. Here the fallback origin is *originless*: its DNS record is a
proxied AAAA `100::` (the discard prefix, which never answers), because the `*/*` Worker route
answers every request that enters the zone, custom hostnames included (Cloudflare's "Workers as
your fallback origin"). So 1,000 salons cost this stack nothing: the same three resources serve them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

# RFC 6666's discard-only prefix: the record exists so the fallback origin resolves and is proxied,
# but nothing behind it ever answers; the Worker route is the origin.
ORIGINLESS_ADDRESS = "100::"
# Every hostname entering the SaaS zone, custom hostnames included. A narrower pattern would need
# one route per salon, which is what this path exists to avoid.
ALL_HOSTNAMES_ROUTE = "*/*"


@dataclass(frozen=True)
class SaasZoneArgs:
    zone_id: str
    fallback_hostname: str
    # From the Worker's deployment: the route goes live only once a deployment serves it.
    worker_name: pulumi.Input[str]


class SaasZone(pulumi.ComponentResource):
    """Originless fallback record, custom hostname fallback origin and `*/*` Worker route on the SaaS zone."""

    fallback_origin: pulumi.Output[str]

    def __init__(self, name: str, args: SaasZoneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:saas:SaasZone", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        record = cloudflare.DnsRecord(
            f"{name}-fallback-dns",
            zone_id=args.zone_id,
            name=args.fallback_hostname,
            type="AAAA",
            content=ORIGINLESS_ADDRESS,
            # Proxied, or requests would go to 100:: itself instead of through the Worker route.
            proxied=True,
            ttl=1,  # automatic, the only TTL a proxied record takes
            comment="managed by pulumi (appointmentbooking): originless SaaS fallback origin",
            opts=child,
        )
        origin = cloudflare.CustomHostnameFallbackOrigin(
            f"{name}-fallback-origin",
            zone_id=args.zone_id,
            # Taken from the record so the origin is set only once its record exists: Cloudflare
            # will not activate a fallback origin whose hostname does not resolve in the zone.
            origin=record.name,
            opts=child,
        )
        cloudflare.WorkersRoute(
            f"{name}-route",
            zone_id=args.zone_id,
            pattern=ALL_HOSTNAMES_ROUTE,
            script=args.worker_name,
            opts=child,
        )
        self.fallback_origin = origin.origin
        self.register_outputs({"fallbackOrigin": self.fallback_origin, "routePattern": ALL_HOSTNAMES_ROUTE})
