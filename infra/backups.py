"""The R2 bucket that holds SQL dumps of the database, with its retention rule."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from booking_shared.retention import SECONDS_PER_DAY

# R2's own default for incomplete multipart uploads.
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


@dataclass(frozen=True)
class BackupBucketArgs:
    account_id: str
    name: str
    retention_days: int
    protect: bool


class BackupBucket(pulumi.ComponentResource):
    """An R2 bucket whose objects R2 itself deletes after `retention_days`.

    The guide could only list old backups and asked for cleanup "via the dashboard"; the
    lifecycle rule makes retention part of the declared infrastructure instead.
    """

    bucket_name: pulumi.Output[str]

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("booking:backups:BackupBucket", name, None, opts)
        keep = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        bucket = cloudflare.R2Bucket(
            f"{name}-bucket",
            account_id=args.account_id,
            name=args.name,
            storage_class="Standard",
            opts=keep,
        )
        cloudflare.R2BucketLifecycle(
            f"{name}-lifecycle",
            account_id=args.account_id,
            bucket_name=bucket.name,
            rules=[{
                "id": f"expire-backups-after-{args.retention_days}-days",
                "enabled": True,
                # An empty prefix scopes the rule to every object in the bucket.
                "conditions": {"prefix": ""},
                # R2 counts object age in seconds.
                "delete_objects_transition": {
                    "condition": {"type": "Age", "max_age": args.retention_days * SECONDS_PER_DAY},
                },
                # Declaring the rules replaces R2's default one, which aborts multipart uploads left
                # incomplete for 7 days; keep that, or failed uploads would be stored (and billed) forever.
                "abort_multipart_uploads_transition": {
                    "condition": {"type": "Age", "max_age": ABORT_INCOMPLETE_UPLOADS_DAYS * SECONDS_PER_DAY},
                },
            }],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bucket_name = bucket.name
        self.register_outputs({"bucketName": self.bucket_name})
