"""The stack's R2 backup bucket: uploading a backup's files, listing what the bucket holds, fetching the newest."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import cloudflare

from ops.backups.catalog import check_file
from ops.backups.manifest import MANIFEST, BackupError, Manifest, VerifyReport, is_backup_name, read_manifest
from ops.database.sqldump import no_progress
from ops.targets import Bucket


def upload(bucket: Bucket, dest: Path, manifest: Manifest) -> list[str]:
    """Copy a local backup into the stack's R2 bucket: the dump first, the manifest last.

    What goes is what the folder holds for `manifest.name`, checked as every reader checks it: the
    manifest on disk must be this one, and the dump must still have its sha256.
    Retention in R2 is the bucket's lifecycle rule (declared in infra/backups.py), not a prune.
    The object API takes up to 300 MB per object; larger dumps belong on R2's S3 API.
    """
    if not is_backup_name(manifest.name) or manifest.file != f"{manifest.name}.sql":
        raise BackupError(f"backup {manifest.name!r}: {manifest.file!r} is not this backup's dump "
                          f"{manifest.name}.sql; not uploading")
    on_disk = read_manifest(dest / f"{manifest.name}{MANIFEST}")
    if on_disk != manifest:
        raise BackupError(f"{dest / (manifest.name + MANIFEST)} changed since the backup was made; not uploading")
    sql_file = dest / manifest.file
    report = VerifyReport(manifest.name, ok=True)
    if not check_file(report, sql_file, manifest, no_progress) or not report.ok:
        raise BackupError(f"{sql_file} is not the dump its manifest describes ({report.failures()}); not uploading")
    keys = []
    for file_name in (manifest.file, f"{manifest.name}{MANIFEST}"):
        path = dest / file_name
        if path.stat().st_size > 300 * 1024 * 1024:
            raise BackupError(f"{path} is over the 300 MB the R2 object API accepts; upload it with R2's S3 API")
        # Keys are the plain file names, without a "folder/": the SDK percent-encodes "/" in object
        # keys (contrary to its own docstring), and the bucket holds nothing but backups anyway.
        # The path, not an open file: the SDK reads the bytes itself, so its retries resend the whole
        # object (a streamed file handle would be exhausted after a failed first attempt); a PUT of
        # the same key is idempotent, so a retry cannot do harm.
        bucket.client.r2.buckets.objects.upload(file_name, path, account_id=bucket.account_id, bucket_name=bucket.name)
        keys.append(file_name)
    return keys


def list_r2(bucket: Bucket) -> list[str]:
    """Names of the complete backups in the bucket (those whose manifest was uploaded)."""
    names = []
    for obj in bucket.client.r2.buckets.objects.list(bucket.name, account_id=bucket.account_id):
        key = str(obj.key or "")
        if key.endswith(MANIFEST):
            names.append(key[:-len(MANIFEST)])
    return sorted(names)


def fetch_newest(bucket: Bucket, dest: Path, database: str) -> Manifest:
    """Copy the newest backup of `database` in the bucket into `dest`, checked; its manifest.

    Newest by when its manifest was uploaded (the manifest goes last, so an upload cut short has
    none and is not a backup). Manifests are read newest first until one names `database` as its
    source. Files arrive in `dest/.fetching/` and move into `dest` only once the dump has the size
    and sha256 its manifest states, the manifest last: a copy cut short (or one that does not
    match) leaves nothing a later run would take for a backup. A backup already in `dest` with the
    same manifest is not downloaded again.
    """
    listed = [obj for obj in bucket.client.r2.buckets.objects.list(bucket.name, account_id=bucket.account_id)
              if str(obj.key or "").endswith(MANIFEST) and is_backup_name(str(obj.key)[:-len(MANIFEST)])]
    # Ties (uploads in one second) fall to the time in the name (`<label>-YYYYMMDD-HHMMSS`), not the
    # name itself: a label sorts first there, and `pre-deploy-<last week>` would beat `nightly-<today>`.
    listed.sort(key=lambda obj: (str(obj.last_modified or ""), _stamp(str(obj.key)), str(obj.key)), reverse=True)
    # A folder of this fetch's own: two fetches into one backup folder must not remove each other's files.
    dest.mkdir(parents=True, exist_ok=True)
    fetching = Path(tempfile.mkdtemp(prefix=".fetching-", dir=dest))
    passed: list[str] = []
    try:
        for obj in listed:
            key = str(obj.key)
            part = fetching / key
            try:
                _get(bucket, key, part, _MANIFEST_BYTES)
                manifest = read_manifest(part)
            except BackupError:
                continue  # not a backup's manifest (too large, unreadable): the bucket holds quarantine records too
            # Only a manifest whose source is bound to its dump (source_sha256): one without could name
            # any database, written by whoever can write the bucket (the checksum is unkeyed: it binds,
            # it does not authenticate; the bucket's permissions do).
            if manifest.source_sha256 is not None and manifest.source.get("database") == database:
                try:
                    return _fetch_dump(bucket, dest, fetching, manifest)
                except _Unusable as exc:
                    passed.append(str(exc))  # this one is broken: the next older whole one will do
        found = f" ({'; '.join(passed)})" if passed else ""
        raise BackupError(f"no usable backup of {database} in R2 bucket {bucket.name}{found}; the scheduled "
                          "workflow uploads one of staging and of production daily; to make one now: "
                          "`bookingctl backup create --stack STACK --upload`")
    finally:
        shutil.rmtree(fetching, ignore_errors=True)


class _Unusable(BackupError):
    """A backup in the bucket whose dump is missing or not the one its manifest describes."""


_STAMP = re.compile(r"(\d{8}-\d{6})")


def _stamp(key: str) -> str:
    # The last one: a label may hold a date of its own (`before-20271231-000000-<time>`).
    found = _STAMP.findall(key)
    return str(found[-1]) if found else ""


_MANIFEST_BYTES = 1024 * 1024


def _fetch_dump(bucket: Bucket, dest: Path, fetching: Path, manifest: Manifest) -> Manifest:
    final, manifest_path = dest / manifest.file, dest / f"{manifest.name}{MANIFEST}"
    same = manifest_path.is_file() and read_manifest(manifest_path) == manifest
    if same:
        report = VerifyReport(manifest.name, ok=True)
        if check_file(report, final, manifest, no_progress) and report.ok:
            return manifest
        # The same backup whose local dump is gone or damaged: fetched again below.
    elif manifest_path.is_file() or final.exists():
        # Names are unique per folder, not per bucket: another machine's backup (or a bucket writer's)
        # may share this one's name. The local backup is never replaced.
        raise BackupError(f"{dest} already holds a backup named {manifest.name} that is not the one in R2 bucket "
                          f"{bucket.name}; nothing was replaced. Move the local one away (or fetch into another "
                          "folder) to use R2's")
    part = fetching / manifest.file
    try:
        _get(bucket, manifest.file, part, manifest.size)
    except cloudflare.NotFoundError:
        raise _Unusable(f"backup {manifest.name}: its dump {manifest.file} is not in the bucket") from None
    except _Unusable:
        raise
    except BackupError as exc:  # larger than its manifest says: another upload's dump under this name
        raise _Unusable(str(exc)) from None
    report = VerifyReport(manifest.name, ok=True)
    if not check_file(report, part, manifest, no_progress) or not report.ok:
        raise _Unusable(f"backup {manifest.name} in R2 bucket {bucket.name} is not the dump its manifest "
                        f"describes ({report.failures()}); not using it")
    part.replace(final)
    # As uploaded, byte for byte: its source_sha256 binds this very source to the dump.
    (fetching / manifest_path.name).replace(manifest_path)
    return manifest


def _get(bucket: Bucket, key: str, path: Path, limit: int) -> None:
    """Stream object `key` into `path`; more than `limit` bytes is a BackupError (the manifest says the size)."""
    written = 0
    with bucket.client.r2.buckets.objects.with_streaming_response.get(
            key, account_id=bucket.account_id, bucket_name=bucket.name) as response, path.open("wb") as out:
        for chunk in response.iter_bytes():
            written += len(chunk)
            if written > limit:
                raise BackupError(f"R2 object {key} in bucket {bucket.name} is larger than the {limit} bytes "
                                  "its manifest (or a manifest's limit) allows; not using it")
            out.write(chunk)
