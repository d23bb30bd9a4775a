"""After `pulumi up` created or updated a SaaS salons' Turnstile widget: list its salons on it again.

Why a hook, when the program already sends the live domains: `pulumi up` reads each SaaS widget's
domains through the provider's invoke and declares them (infra/turnstile.py), so an update (a
renamed Worker, a changed mode, a default a provider release adds) PUTs the salons the widget listed
at that read; the provider's update is a PUT of the whole widget (terraform-provider-cloudflare
internal/services/turnstile_widget/resource.go, `Update` -> `Turnstile.Widgets.Update`). A salon
`bookingctl tenants add` lists between the read and the PUT is taken off by it. Bound after create
and after update (infra/turnstile.py), this lists the widget's salons again from the tenants table,
so such a salon's bookings fail the bot check only between the provider's PUT and this one; when
the widget lists them all (the usual case), it sends nothing. (`ignore_changes=["domains"]`, the
earlier design, made every update send the domains in Pulumi's state, the fallback hostname alone:
pulumi/pulumi pkg/resource/deploy/step_generator.go `processIgnoreChanges`.)

Which salons: active tenant rows whose hostname the stack config does not serve (those are not
SaaS salons) and whose `turnstile_widget` names this widget; a row from before the column existed
names none and was on widget 0, the only one there was.

Hooks never run under mocks or in preview; this is a plain function, tested against the API double.
An exception here fails `pulumi up` (an after hook's failure does, from CLI 3.238.0): the operator
then runs `bookingctl tenants status`, which names every salon missing from its widget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from booking_shared.edge import turnstile_covers, turnstile_domains
from booking_shared.errors import OperationFailed
from booking_shared.hostnames import normalize
from booking_shared.limits import turnstile_hostname_limit
from booking_shared.turnstile import SaasWidgetContext, saas_widget_name
from ops.targets import Database, TargetError, cloudflare_client, missing_tables, remote_database
from ops.tenants.tenant_table import has_widget_column, widget_of
from ops.tenants.widgets import put_widget_domains

if TYPE_CHECKING:
    from cloudflare import Cloudflare


class TurnstileHookError(OperationFailed):
    """The widget's salons could not be listed again; the message says what to run."""


def salons_on(db: Database, ctx: SaasWidgetContext, index: int) -> list[str]:
    """The hostnames of the active SaaS salons whose row names widget `index` (sorted)."""
    if missing_tables(db, ["tenants"]):
        return []  # a stack whose database has no schema yet has no salons
    column = ", turnstile_widget" if has_widget_column(db) else ""
    rows = db.query(f"SELECT hostname{column} FROM tenants WHERE status = 'active' AND hostname IS NOT NULL")
    served = {normalize(h) for h in ctx.served} | {normalize(ctx.fallback_hostname)}
    return sorted({normalize(str(r["hostname"])) for r in rows
                   if normalize(str(r["hostname"])) not in served and widget_of(r) == index})


def relist_saas_widget(ctx: SaasWidgetContext, index: int, sitekey: str, *, created: bool = False,
                       log: Callable[[str], None] = print) -> list[str]:
    """Put every salon of SaaS widget `index` (the one with `sitekey`) back on its domains; the
    hostnames it had to add. Nothing is sent when the widget lists them all.

    `created`: the widget was just created, maybe before the stack's database exists (a new stack),
    which then has no salons.
    """
    name = saas_widget_name(ctx.worker_name, index)
    client: Cloudflare = (ctx.client_factory or cloudflare_client)()
    with client:
        try:
            db = remote_database(ctx.account_id, ctx.database_name, client=client, stack=ctx.stack)
        except TargetError as exc:
            if created:
                log(f"SaaS Turnstile widget {name} created before database {ctx.database_name}: no salons to list")
                return []
            raise TurnstileHookError(f"cannot read the salons of SaaS Turnstile widget {name} to list them again "
                                     f"after its update ({exc}); until they are listed their bookings fail the bot "
                                     f"check: run `bookingctl tenants status --stack {ctx.stack}` and `tenants "
                                     "add` for each salon it names") from exc
        import cloudflare

        try:
            salons = salons_on(db, ctx, index)
            widget = client.turnstile.widgets.get(sitekey, account_id=ctx.account_id)
        except cloudflare.APIError as exc:
            # Nothing was sent: the salons stay off the widget until they are listed again.
            raise TurnstileHookError(f"cannot read the salons of SaaS Turnstile widget {name}, or the widget, to list "
                                     f"them again after its update ({exc}); until they are listed their bookings "
                                     f"fail the bot check: run `bookingctl tenants status --stack {ctx.stack}` and "
                                     "`tenants add` for each salon it names") from exc
        if widget is None:
            raise TurnstileHookError(f"Cloudflare returned no widget for sitekey {sitekey} ({name})")
        listed = turnstile_domains(widget.domains)
        missing = [h for h in salons if not turnstile_covers(listed, h)]
        if not missing:
            log(f"SaaS Turnstile widget {name} lists all {len(salons)} of its salon hostname(s)")
            return []
        wanted = [*widget.domains, *missing]
        limit = turnstile_hostname_limit(ctx.plan)
        if len(wanted) > limit:
            raise TurnstileHookError(
                f"SaaS Turnstile widget {name} should list {len(wanted)} hostnames after its update, more than the "
                f"{limit} of the Turnstile {ctx.plan} plan (booking:turnstile.plan); {len(missing)} salon(s) are off "
                f"it ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); check the plan, then `bookingctl "
                f"tenants status --stack {ctx.stack}`")
        put_widget_domains(client, ctx.account_id, widget, wanted)
        log(f"SaaS Turnstile widget {name}: {len(missing)} salon hostname(s) listed again after the update")
        return missing
