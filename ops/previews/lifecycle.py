"""`bookingctl preview up|down`: a pull request's preview created, loaded, capped and destroyed.

up:   write Pulumi.pr-N.yaml (derived from staging's) -> unless a completed load is recorded, fetch
      staging's newest verified backup and refuse a branch behind it (before anything is planned) ->
      `pulumi preview` with the policy pack -> delete what carries the preview's own names but is in
      no state (a create whose answer was lost: ops/previews/sweep.py) -> `pulumi up` ->
      apply pending migrations to the preview's D1 (none when the deploy hook already did) -> load that
      backup, migrated and scrubbed, unless a completed load is recorded in it -> destroy the least
      recently updated previews beyond staging's `booking:previewCap` (never one never updated).
down: empty the preview's own backup bucket (R2 refuses to delete a bucket with objects, 10008) ->
      `pulumi destroy` and remove the stack -> delete what still carries its names -> remove the
      stack file.

A preview never touches staging's or production's resources: every name it creates or deletes is
derived from staging's with `-pr-N` appended (stackconfig/preview.py), and `down` refuses a bucket
whose name does not end so. Secrets: the salt of the scrubber comes from the environment
(BOOKING_SCRUB_SALT, the pull-request environment's own secret), mixed with the stack's name, so two
previews' fakes differ and the salt is never written anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cloudflare import Cloudflare

from booking_shared.project import Project
from booking_shared.wrangler_config import settings as wrangler_settings
from ops.database import migrations
from ops.previews.data import Loaded, load_scrubbed, loaded, not_behind
from ops.previews.engine import Engine, EngineError, Held, LiveStack, Log
from ops.previews.stackfile import write_stack
from ops.previews.sweep import D1, PreviewRefused, empty_bucket, sweep, to_stderr
from ops.targets import Bucket, RemoteDatabase
from stackconfig.files import read_stack_config
from stackconfig.model import StackConfig
from stackconfig.preview import DEFAULT_LIFETIME_DAYS, MAX_LIFETIME_DAYS, pr_of, stack_name

SALT_MIN_BYTES = 16


@dataclass
class UpResult:
    stack: str
    url: str
    expires: dt.date
    destroyed: list[str] = field(default_factory=list)  # previews removed to stay within the cap
    migrations: list[str] = field(default_factory=list)
    loaded: Loaded | None = None


def preview_salt(secret: str, stack: str) -> bytes:
    """The scrubber's salt for one preview: HMAC of the stack's name under the environment's secret."""
    if len(secret.encode()) < SALT_MIN_BYTES:
        raise PreviewRefused(f"BOOKING_SCRUB_SALT must be a secret of at least {SALT_MIN_BYTES} characters "
                             "(e.g. `openssl rand -hex 32`, kept as the pull-request environment's secret); "
                             "nothing was created")
    return hmac.new(secret.encode(), stack.encode(), hashlib.sha256).digest()


def preview_up(project: Project, pr: int, *, engine: Engine, client: Cloudflare, salt_secret: str, today: dt.date,
               lifetime_days: int = DEFAULT_LIFETIME_DAYS, classification: Path | None = None,
               log: Log = print, warn: Log = to_stderr) -> UpResult:
    """`classification`: the columns.yaml to scrub by (the workflow passes the base branch's, so a pull
    request cannot mark a personal column `keep` for its own preview); default: this tree's. `warn`: where
    the deletion of a lost create's leftover is reported (stderr)."""
    stack = stack_name(pr)
    salt = preview_salt(salt_secret, stack)  # refused before anything is written
    staging = read_stack_config("staging", project.root)
    cfg = write_stack(project, pr, today=today, lifetime_days=lifetime_days)
    assert cfg.preview is not None
    result = UpResult(stack, f"https://{cfg.domain}", cfg.preview.expires)
    # The pack and the plan first, then the preview itself; only once it is up and loaded are the least
    # recently updated others destroyed to bring the live ones back within the cap: a preview that cannot
    # come up (refused, or failing half-way) destroys nobody else's. (While it comes up, one more than
    # the cap may live: keep booking:previewCap under the account's limits by one.)
    settings = wrangler_settings(project.root)
    with tempfile.TemporaryDirectory(prefix="booking-preview-") as folder:
        fetched = Path(folder)
        # The state as it stands before anything changes (with the real engine a `pulumi stack export`):
        # read once, for the early check and for the sweep (a `pulumi preview` changes no state).
        held = engine.held(stack)
        if not _holds_a_load(cfg, client, held):
            # Before the plan: a branch behind main is refused having changed nothing (no preview made,
            # no other one destroyed for the cap); the load below reuses the backup fetched here.
            not_behind(Bucket.of(staging, client), fetched, staging.database_name, settings, log)
        log(f"pulumi preview --stack {stack} (policy pack)")
        engine.check(stack, log)
        # What a create whose answer was lost left (in the account, in no state) would fail this `up` on
        # its name: deleted first, once the pack has passed the plan.
        sweep(client, cfg, stack, held, warn)
        log(f"pulumi up --stack {stack} (policy pack first)")
        try:
            engine.up(stack, log)
        except EngineError as exc:
            raise EngineError(f"{exc}; run `bookingctl preview up --pr {pr}` again: it first deletes what a create "
                              "whose answer was lost left under the preview's names") from exc
        db = RemoteDatabase.of(cfg, client)
        found = migrations.discover(settings.folder, pattern=settings.pattern)
        result.migrations = migrations.apply(db, found, log=log, table=settings.table).applied
        result.loaded = load_scrubbed(db, Bucket.of(staging, client), staging.database_name, settings, salt=salt,
                                      log=log, classification=classification, folder=fetched)
        # Last: a preview refused or failing anywhere above (its load too: a backup newer than the one
        # checked before the plan) destroys nobody else's.
        result.destroyed = enforce_cap(project, engine, client, keep=stack, cap=staging.preview_cap, today=today,
                                       log=log)
    return result


def _holds_a_load(cfg: StackConfig, client: Cloudflare, held: list[Held]) -> bool:
    """Whether the preview's database, as its state holds it, holds a completed load (a push: nothing
    to load). A loaded database the state does not hold is a leftover the sweep deletes: it counts not."""
    ids = {h.id for h in held if h.type == D1}
    if not any(d.name == cfg.database_name and d.uuid in ids
               for d in client.d1.database.list(account_id=cfg.account_id, name=cfg.database_name)):
        return False
    return loaded(RemoteDatabase.of(cfg, client)) is not None


def enforce_cap(project: Project, engine: Engine, client: Cloudflare, *, keep: str, cap: int, today: dt.date,
                log: Log) -> list[str]:
    """Destroy the least recently updated previews until `keep` fits within `cap` live previews."""
    # `keep` counts once whether it is live already (a push) or about to be created.
    # Never the preview of a stack never updated: its first `up` may be under way in its own job, and
    # a destroy now would race it (down's sweep deleting what that up just created). Such a stack
    # holds nothing yet; it counts toward the cap once it is up.
    oldest_first = sorted((s for s in engine.stacks() if pr_of(s.name) is not None and s.name != keep
                           and s.last_update is not None), key=_updated)
    destroyed: list[str] = []
    while oldest_first and len(oldest_first) + 1 > cap:
        log(f"{len(oldest_first) + 1} previews would be live, over staging's booking:previewCap {cap}: destroying "
            f"{oldest_first[0].name} (least recently updated: {oldest_first[0].last_update or 'never'})")
        victim = oldest_first.pop(0)
        preview_down(project, pr_of(victim.name) or 0, engine=engine, client=client, today=today, log=log)
        destroyed.append(victim.name)
    return destroyed


def _updated(stack: LiveStack) -> dt.datetime:
    when = stack.last_update or dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def preview_down(project: Project, pr: int, *, engine: Engine, client: Cloudflare, today: dt.date,
                 log: Log = print, warn: Log = to_stderr) -> bool:
    """Destroy pull request `pr`'s preview; False when it has none (nothing to do, nothing written)."""
    stack = stack_name(pr)
    path = project.stack_file(stack)
    if not any(s.name == stack for s in engine.stacks()):
        log(f"pull request {pr} has no live preview ({stack}): nothing to destroy")
        return False
    # The stack file of another pull request's preview is not in this checkout: derived again (its
    # names depend only on staging's and the number), so the engine can select the stack. The bucket
    # to empty is the one the preview was created with (its `backupBucket` output): staging's file may
    # have renamed its own since.
    cfg = read_stack_config(stack, project.root) if path.is_file() else write_stack(project, pr, today=today)
    bucket_name = str(engine.outputs(stack).get("backupBucket") or cfg.backup_bucket_name)
    if not bucket_name.endswith(f"-{stack}"):
        raise PreviewRefused(f"{stack}: backup bucket {bucket_name} is not a preview's (it must end in -{stack}); "
                             "nothing was deleted")
    emptied = empty_bucket(Bucket(client, cfg.account_id, bucket_name), log)
    if emptied:
        log(f"deleted {emptied} object(s) from the preview's bucket {bucket_name}")
    log(f"pulumi destroy --stack {stack}")
    engine.destroy(stack, log)
    # The stack is gone, so nothing is held: whatever still carries its names was never in its state.
    sweep(client, cfg, stack, [], warn, bucket=bucket_name)
    path.unlink(missing_ok=True)
    return True


def prune(project: Project, *, engine: Engine, client: Cloudflare, open_prs: set[int], today: dt.date,
          now: dt.datetime, log: Log = print) -> list[str]:
    """Destroy every live preview whose pull request is not open, or that nobody updated for
    MAX_LIFETIME_DAYS (its lifetime's bound, whatever its file said); the stacks destroyed."""
    gone = []
    for live in sorted(engine.stacks(), key=lambda s: s.name):
        pr = pr_of(live.name)
        if pr is None:
            continue
        # A stack never updated is one whose first `up` may be under way (its `pulumi preview` made
        # it): it is not idle, however old `never` is; destroyed only once its pull request closes.
        idle = (now - live.last_update).days if live.last_update is not None else 0
        why = ("its pull request is not open" if pr not in open_prs else
               f"not updated for {idle} days (a preview lives at most {MAX_LIFETIME_DAYS})"
               if idle > MAX_LIFETIME_DAYS else None)
        if why is None:
            continue
        log(f"{live.name}: {why}: destroying it")
        preview_down(project, pr, engine=engine, client=client, today=today, log=log)
        gone.append(live.name)
    return gone
