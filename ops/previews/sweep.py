"""What a create whose answer was lost left under a preview's own names, in no stack's state: deleted.

Why it happens: Cloudflare created the resource but the engine never heard so (a 502 from the edge, a
timeout), so the stack's state does not hold it, with the real engine as with the tests' double. Each
later `pulumi up` then fails to create it again on its name (D1 "a database with that name already
exists", R2 10073, a Worker's or Pages project's name, DNS 81053 on the hostname, a route's pattern),
and `pulumi destroy` does not know it. So `preview up` runs this before the engine's `up`, and `down`
after `destroy`.

Why deleting is safe: every name a preview creates is staging's with `-pr-N` appended, and its hostname
has `-pr-N` in its first label (stackconfig/preview.py; the `preview-isolated` policy checks the plan),
so a resource carrying exactly one of those names is this preview's own (a Turnstile widget, named per
environment, is the preview's when it lists the preview's own hostname alone); its data is loaded again
from staging's backup. Never deleted: a name that is not the preview's own (refused before anything is
deleted), and anything the stack's state holds (the same type with the same id or the same name).
Adopting instead (`pulumi import`) would need the provider's import ids per type; deleting needs none.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from cloudflare import Cloudflare, NotFoundError

from booking_shared.errors import InputError
from ops.previews.engine import Held, Log
from ops.targets import Bucket
from stackconfig.model import StackConfig

D1 = "cloudflare:index/d1Database:D1Database"
R2 = "cloudflare:index/r2Bucket:R2Bucket"
WORKER = "cloudflare:index/worker:Worker"
PAGES = "cloudflare:index/pagesProject:PagesProject"
PAGES_DOMAIN = "cloudflare:index/pagesDomain:PagesDomain"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
TURNSTILE = "cloudflare:index/turnstileWidget:TurnstileWidget"


class PreviewRefused(InputError):
    """A preview operation refused before changing anything (a salt too short, a foreign name)."""


@dataclass(frozen=True)
class Found:
    """A resource found in the account under one of the preview's names, and how to delete it."""

    type: str
    id: str
    name: str
    delete: Callable[[], object]


def to_stderr(message: str) -> None:
    """Where a deletion is reported: stderr, apart from the progress log, as a warning a reader must see."""
    print(message, file=sys.stderr)


def own_names(cfg: StackConfig, stack: str, bucket: str) -> None:
    """Refuse, before anything is deleted, when a name to look for is not `stack`'s own."""
    mark = f"-{stack}"
    for name in (cfg.database_name, bucket, cfg.worker_name, cfg.pages_project_name):
        if not name.endswith(mark):
            raise PreviewRefused(f"{name} is not a preview's name (it must end in {mark}); nothing was deleted")
    if not cfg.domain.split(".", 1)[0].endswith(mark):
        raise PreviewRefused(f"{cfg.domain} is not a preview's hostname ({mark} must end its first label); "
                             "nothing was deleted")


def sweep(client: Cloudflare, cfg: StackConfig, stack: str, held: list[Held], warn: Log = to_stderr,
          bucket: str | None = None) -> list[str]:
    """Delete what carries `stack`'s own names and `held` (its state) does not hold; what was deleted.

    `bucket`: the backup bucket's name when it differs from `cfg`'s (`down` uses the one the preview
    was created with)."""
    bucket = bucket or cfg.backup_bucket_name
    own_names(cfg, stack, bucket)
    # Held ids of any type: a type token may change under an alias (pulumi_cloudflare gives DnsRecord
    # the alias `cloudflare:index/record:Record`), and the engine then takes the state's resource for
    # the declared one; ids are unique. Names only within their type: the preview's hostname names its
    # DNS record, its Pages domain and (as a pattern's host) its route alike.
    ids = {h.id for h in held if h.id}
    names: dict[str, set[str]] = {}
    for h in held:
        if h.name:
            names.setdefault(h.type, set()).add(h.name)
    deleted = []
    # Routes and the hostname's record first (they name the Worker and the Pages project), buckets last.
    for found in _candidates(client, cfg, bucket, names.get(PAGES, set())):
        # A widget's state id may be its sitekey or `<account_id>/<sitekey>` (its import id).
        if found.id in ids or f"{cfg.account_id}/{found.id}" in ids or found.name in names.get(found.type, ()):
            continue
        found.delete()
        kind = found.type.rsplit(":", 1)[-1]
        deleted.append(f"{kind} {found.name}")
        warn(f"deleted {kind} {found.name} ({found.id}): it carries {stack}'s own name but the stack's state does "
            "not hold it (left by a create whose answer was lost); a preview's data is loaded again from "
            "staging's backup")
    return deleted


def _candidates(client: Cloudflare, cfg: StackConfig, bucket: str, held_projects: set[str]) -> Iterator[Found]:
    account, zone = cfg.account_id, cfg.zone_id
    for route in client.workers.routes.list(zone_id=zone):
        if route.pattern == cfg.route_pattern:
            yield Found(ROUTE, route.id, route.pattern,
                        partial(client.workers.routes.delete, route.id, zone_id=zone))
    for record in client.dns.records.list(zone_id=zone):
        # Only what conflicts with the preview's CNAME on its hostname (81053): A, AAAA, CNAME.
        if record.name == cfg.domain and record.type in ("A", "AAAA", "CNAME") and record.id:
            yield Found(DNS, record.id, record.name, partial(client.dns.records.delete, record.id, zone_id=zone))
    yield from _pages(client, cfg, held_projects)
    for widget in client.turnstile.widgets.list(account_id=account):
        # A widget has no name of the preview's own (site_widget_name is per environment: staging's),
        # but one that lists the preview's own hostname alone serves nothing else. Its sitekey stands
        # for its name, so a held widget of the same (staging's) name does not hide it.
        if [str(d) for d in widget.domains or []] == [cfg.domain]:
            yield Found(TURNSTILE, widget.sitekey, widget.sitekey,
                        partial(client.turnstile.widgets.delete, widget.sitekey, account_id=account))
    for worker in client.workers.beta.workers.list(account_id=account):
        if worker.name == cfg.worker_name:
            yield Found(WORKER, worker.id, worker.name,
                        partial(client.workers.beta.workers.delete, worker.id, account_id=account))
    for db in client.d1.database.list(account_id=account, name=cfg.database_name):
        if db.name == cfg.database_name and db.uuid:
            yield Found(D1, db.uuid, db.name, partial(client.d1.database.delete, db.uuid, account_id=account))
    try:
        client.r2.buckets.get(bucket, account_id=account)
    except NotFoundError:
        return

    def delete_bucket() -> None:
        empty_bucket(Bucket(client, account, bucket), lambda _: None)  # R2 refuses a bucket with objects (10008)
        client.r2.buckets.delete(bucket, account_id=account)

    yield Found(R2, bucket, bucket, delete_bucket)


def _pages(client: Cloudflare, cfg: StackConfig, held_projects: set[str]) -> Iterator[Found]:
    """The preview's Pages project, and its hostname on it; a project is deleted after its domains."""
    account, name = cfg.account_id, cfg.pages_project_name
    try:
        project = client.pages.projects.get(name, account_id=account)
    except NotFoundError:
        return
    left = name not in held_projects
    for domain in project.domains or []:
        # The project's own `<subdomain>.pages.dev` is listed beside its custom domains (the API's
        # `domains`, as wrangler's `pages project list` prints it) but is no custom domain to delete.
        if domain == project.subdomain or domain.endswith(".pages.dev"):
            continue
        # On a project the state holds, only the preview's own hostname; on one it does not, every
        # custom domain (the project is the preview's own, and goes with them: the API refuses to
        # delete a project that still has custom domains).
        if left or domain == cfg.domain:
            yield Found(PAGES_DOMAIN, domain, domain, partial(client.pages.projects.domains.delete,
                                                                  domain, account_id=account, project_name=name))
    yield Found(PAGES, name, name, partial(client.pages.projects.delete, name, account_id=account))


def empty_bucket(bucket: Bucket, log: Log) -> int:
    """Delete every object of `bucket` (gone already: 0)."""
    r2 = bucket.client.r2.buckets
    try:
        keys = [str(o.key) for o in r2.objects.list(bucket.name, account_id=bucket.account_id) if o.key]
    except NotFoundError:
        log(f"bucket {bucket.name} does not exist: nothing to empty")
        return 0
    for key in keys:
        # Gone already (a retried delete whose first answer was lost): what was wanted.
        with contextlib.suppress(NotFoundError):
            r2.objects.delete(key, account_id=bucket.account_id, bucket_name=bucket.name)
    return len(keys)
