"""Bundles that failed a release, recorded in the stack's R2 bucket so the same code is not shipped again.

A canary or a post-deploy verification that fails writes one JSON record per bundle (its sha256,
the version id, why, and the numbers it was judged on). The deployment hook and `bookingctl
release canary` refuse a quarantined bundle until someone clears it with a reason and a name;
clearing keeps the record and adds who cleared it and why, so the history stays readable.

Records share the backup bucket and its lifecycle rule: a record older than the stack's
`backupRetentionDays` expires with the backups (a bundle that old is not shipped by mistake).
Writes are PUTs of a whole object under a fixed key, so the SDK's retry of one cannot do harm.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from booking_shared.errors import InputError
from booking_shared.rollout import QUARANTINE_PREFIX, quarantine_key
from booking_shared.text import printable
from ops.targets import Bucket

if TYPE_CHECKING:
    pass

_SHA256 = re.compile(r"[0-9a-f]{64}")
# One record is a few hundred bytes; anything much larger in its place was not written by us.
_MAX_RECORD = 64 * 1024


class QuarantinedError(InputError):
    """The bundle being released failed an earlier release and has not been cleared."""


class QuarantineRecordError(InputError, ValueError):
    """A bad sha256, reason or name for a quarantine command (usage: exit 2)."""


@dataclass
class QuarantineRecord:
    bundle_sha256: str
    version_id: str
    stack: str
    reason: str
    at: str
    metrics: dict[str, Any] = field(default_factory=dict)
    cleared: dict[str, str] | None = None  # {"reason", "approvedBy", "at"} once cleared
    # Set when the object under this key could not be read (why): listed as such, and it still blocks.
    unreadable: str | None = None

    @property
    def active(self) -> bool:
        return self.cleared is None

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        return {"bundleSha256": raw["bundle_sha256"], "versionId": raw["version_id"], "stack": raw["stack"],
                "reason": raw["reason"], "at": raw["at"], "metrics": raw["metrics"], "cleared": raw["cleared"],
                "unreadable": raw["unreadable"]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], bundle_sha256: str) -> QuarantineRecord:
        """The record stored under `bundle_sha256`'s key: the key names the bundle, whatever the body says."""
        cleared = raw.get("cleared")
        # A clearance counts only with who approved it and why (what `clear` writes); anything less in
        # its place (`{}`, a name alone) is not a decision anyone took, so the bundle stays quarantined.
        if not (isinstance(cleared, dict) and all(isinstance(cleared.get(k), str) and cleared[k].strip()
                                                  for k in ("approvedBy", "reason"))):
            cleared = None
        return cls(bundle_sha256=bundle_sha256, version_id=str(raw.get("versionId") or ""),
                   stack=str(raw.get("stack") or ""), reason=str(raw.get("reason") or ""),
                   at=str(raw.get("at") or ""), metrics=dict(raw.get("metrics") or {}),
                   cleared={str(k): str(v) for k, v in cleared.items()} if cleared is not None else None)


def check_sha256(value: str) -> str:
    """A bundle's sha256 as 64 lowercase hex digits (what `release status` lists)."""
    if not _SHA256.fullmatch(value or ""):
        raise QuarantineRecordError(f"{printable(value, 80)!r} is not a bundle sha256 (64 lowercase hex digits, as "
                                    "`bookingctl release quarantine list` shows them)")
    return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _put(bucket: Bucket, record: QuarantineRecord) -> None:
    data = json.dumps(record.to_dict(), indent=2, sort_keys=True).encode()
    bucket.client.r2.buckets.objects.upload(quarantine_key(record.bundle_sha256), data, account_id=bucket.account_id,
                                            bucket_name=bucket.name)


def add(bucket: Bucket, *, bundle_sha256: str, version_id: str, stack: str,
        reason: str, metrics: dict[str, Any] | None = None) -> QuarantineRecord:
    """Record a failed bundle (replacing an earlier record of it, cleared or not)."""
    record = QuarantineRecord(check_sha256(bundle_sha256), version_id, stack, reason[:2000], _now(),
                              dict(metrics or {}))
    _put(bucket, record)
    return record


def get(bucket: Bucket, bundle_sha256: str) -> QuarantineRecord | None:
    """The bundle's record, or None when it has none."""
    import cloudflare

    try:
        response = bucket.client.r2.buckets.objects.get(quarantine_key(check_sha256(bundle_sha256)),
                                                        account_id=bucket.account_id, bucket_name=bucket.name)
    except cloudflare.NotFoundError:
        return None
    data = response.read()
    if len(data) > _MAX_RECORD:
        raise QuarantineRecordError(f"quarantine record {quarantine_key(bundle_sha256)} in R2 bucket {bucket.name} is "
                                    f"{len(data)} bytes, not a record this tool wrote; inspect it by hand")
    try:
        return QuarantineRecord.from_dict(json.loads(data), bundle_sha256)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise QuarantineRecordError(f"quarantine record {quarantine_key(bundle_sha256)} in R2 bucket {bucket.name} is "
                                    f"not readable ({exc}); inspect it by hand") from exc


def records(bucket: Bucket) -> list[QuarantineRecord]:
    """Every record in the bucket (cleared ones too), newest first.

    A record that cannot be read is listed as unreadable (and active: the hook refuses its bundle),
    never left out of the list that explains why a release is refused.
    """
    found = []
    for item in bucket.client.r2.buckets.objects.list(bucket.name, account_id=bucket.account_id,
                                                      prefix=QUARANTINE_PREFIX):
        key = getattr(item, "key", None) or ""
        sha = key.removeprefix(QUARANTINE_PREFIX).removesuffix(".json")
        if not _SHA256.fullmatch(sha):
            continue
        try:
            record = get(bucket, sha)
        except QuarantineRecordError as exc:
            record = QuarantineRecord(sha, "", "", f"unreadable record: {exc}", "", unreadable=str(exc))
        if record is not None:
            found.append(record)
    return sorted(found, key=lambda r: r.at, reverse=True)


def clear(bucket: Bucket, bundle_sha256: str, *, reason: str,
          approved_by: str) -> QuarantineRecord:
    """Let a quarantined bundle be released again; the record keeps who decided and why."""
    if not reason.strip():
        raise QuarantineRecordError("--reason must say why the bundle may be released again")
    if not approved_by.strip():
        raise QuarantineRecordError("--approved-by must name who approved it")
    record = get(bucket, bundle_sha256)
    if record is None:
        raise QuarantineRecordError(f"bundle {bundle_sha256} has no quarantine record in R2 bucket {bucket.name}")
    record.cleared = {"reason": reason.strip()[:2000], "approvedBy": approved_by.strip()[:200], "at": _now()}
    _put(bucket, record)
    return record


def clear_command(stack: str, bundle_sha256: str) -> str:
    return (f"bookingctl release quarantine clear {bundle_sha256} --stack {stack} --reason '...' "
            "--approved-by NAME")


def refuse_if_quarantined(bucket: Bucket, bundle_sha256: str, stack: str) -> None:
    """Raise QuarantinedError when the bundle has an active record."""
    record = get(bucket, bundle_sha256)
    if record is not None and record.active:
        raise QuarantinedError(
            f"bundle sha256:{bundle_sha256} is quarantined: version {record.version_id} of it failed on stack "
            f"{record.stack} at {record.at} ({printable(record.reason, 300)}). Fix the code (a new bundle has a new "
            f"sha256), or once you know it is safe: {clear_command(stack, bundle_sha256)}")
