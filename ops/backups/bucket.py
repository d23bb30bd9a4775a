"""The stack's R2 backup bucket: uploading a backup's files, listing what the bucket holds."""

from __future__ import annotations

from pathlib import Path

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
