"""Backups of a D1 database as SQL dumps with a manifest, and their verification and retention.

A backup is two files in a folder: `<name>.sql`, restorable with `wrangler d1 execute --file`
(no BEGIN/COMMIT, which D1 rejects; foreign keys deferred), and `<name>.manifest.json` (sha256,
size, per-table row counts, source and bookmark, created_at, reason). Both are written under
temporary names and renamed into place, the manifest last; a backup is listed only when its
manifest exists, so a half-written backup is never listed.

A manifest is data from a folder that others can write to, so nothing in it is followed blindly:
its `name` must be its own file's name and its `file` must be `<name>.sql` (no paths), every field
must have its type, and `created_at` must be an ISO 8601 time with its offset. A manifest that is
not so is skipped with a warning by list and prune, and refused by verify and restore.

Local databases are dumped by `ops.database.sqldump` (streamed, memory stays flat); remote ones through
D1's export API (a polling job, then a download from a signed URL), streamed to disk as well and
bounded in time and size (`ExportLimits`). Rows whose foreign keys point nowhere are recorded in
the manifest, so that verify can say the source already had them.

An export made elsewhere (`wrangler d1 export`, the dashboard) becomes a backup through `import_file`:
loaded and counted first, then copied in with a manifest, exactly as a remote backup's download is.

Verify and restore load a dump through `ops.database.sqlload`: only what dumps contain, within a time and
a size limit. Files being written are partials held by their writer; what a killed run leaves
behind is removed by a later one (`ops.backups.staging`).

The room's public operations, gathered here for the CLI, the deployment hooks and the one-salon
restore, and the tests: manifest.py (names, manifests), files.py (writing a backup's files),
catalog.py (list, find, verify, prune), archive.py (create, import, remote export), restore.py
(restore into a local file), bucket.py (R2).
"""

from __future__ import annotations

from ops.backups.archive import MAX_SAFE_INTEGER, ExportLimits, Imported, UnsafeIntegers, create, import_file
from ops.backups.bucket import list_r2, upload
from ops.backups.catalog import find, list_backups, loaded, prune, verify_backup
from ops.backups.manifest import (
    CRITICAL_TABLES,
    LOCK_TIMEOUT,
    MAX_RETENTION_DAYS,
    BackupError,
    BackupInputError,
    BackupNotFound,
    Manifest,
    ManifestError,
    VerifyReport,
    Warn,
    ignore,
    is_backup_name,
    read_manifest,
    source_digest,
)
from ops.backups.restore import Kept, Restored, restore_command, restore_local

__all__ = [
    "CRITICAL_TABLES",
    "LOCK_TIMEOUT",
    "MAX_RETENTION_DAYS",
    "MAX_SAFE_INTEGER",
    "BackupError",
    "BackupInputError",
    "BackupNotFound",
    "ExportLimits",
    "Imported",
    "Kept",
    "Manifest",
    "ManifestError",
    "Restored",
    "UnsafeIntegers",
    "VerifyReport",
    "Warn",
    "create",
    "find",
    "ignore",
    "import_file",
    "is_backup_name",
    "list_backups",
    "list_r2",
    "loaded",
    "prune",
    "read_manifest",
    "restore_command",
    "restore_local",
    "source_digest",
    "upload",
    "verify_backup",
]
