"""R2: buckets (details), objects (put, get, list by prefix).

A bucket is the SDK's `Bucket` (location lowercase, as its Literal lists).
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from cloudflare.types.r2.buckets.lifecycle_get_response import Rule as LifecycleRule
from pydantic import ValidationError

from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Response, error, ok
from tests.helpers.cf_double.routes import Bytes, Reply, Request, Route

# R2's codes (developers.cloudflare.com/r2/api/error-codes, "Error code reference", Bucket errors; the
# page documents them for the Workers and S3 APIs, so that the v4 REST API answers the same codes is
# read from it, not stated there):
# 10005 InvalidBucketName 400 ("3-63 chars, lowercase alphanumeric and hyphens, start/end with
# alphanumeric"), 10006 NoSuchBucket 404, 10008 BucketNotEmpty 409 ("Cannot delete bucket that contains
# objects"), 10073 BucketConflict 409 ("Bucket name already exists").
BAD_NAME = (10005, "Bucket name does not meet naming requirements.")
NO_BUCKET = (10006, "The specified bucket does not exist.")
NOT_EMPTY = (10008, "Cannot delete bucket that contains objects.")
NAME_TAKEN = (10073, "Bucket name already exists.")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
NO_KEY = (10007, "The specified key does not exist.")
LIST_PAGE = 20


class R2(Service):
    buckets: dict[str, dict[str, bytes]]  # bucket -> key -> bytes
    bucket_created: dict[str, str]  # bucket -> when the double first saw it
    # (bucket, key) -> when it was PUT: the listing's `last_modified`, an ISO 8601 time (the SDK's
    # model cloudflare/types/r2/buckets/object_list_response.py, `last_modified: Optional[datetime]`).
    # An object a test placed in `buckets` directly was put "now".
    object_modified: dict[tuple[str, str], str]
    cursors_issued: set[str]  # what list_objects handed out: the only cursors it takes back
    # bucket -> its lifecycle rules as PUT (the SDK's lifecycle_update_params.Rule dicts)
    lifecycles: dict[str, list[dict[str, Any]]]

    def _init_r2(self) -> None:
        self.buckets = {}
        self.bucket_created = {}
        self.object_modified = {}
        self.cursors_issued = set()
        self.lifecycles = {}

    def bucket(self, req: Request) -> Response:
        name = req.params["bucket"]
        if name not in self.buckets:
            return 404, error(*NO_BUCKET)
        created = self.bucket_created.setdefault(name, self.clock.stamp())
        return 200, ok({"name": name, "creation_date": created, "location": "weur",
                        "storage_class": "Standard", "jurisdiction": "default"})

    def _bucket_object(self, name: str) -> dict[str, Any]:
        return {"name": name, "creation_date": self.bucket_created.setdefault(name, self.clock.stamp()),
                "location": "weur", "storage_class": "Standard"}

    def list_buckets(self, req: Request) -> Response:
        """The account's buckets, `name_contains` filtering (the document's r2_list_buckets parameters).
        Paging parameters other than per_page are not modelled and refused rather than ignored."""
        unmodelled = sorted(set(req.query) - {"name_contains", "per_page"})
        if unmodelled:
            return 400, error(10000, f"the double does not model {', '.join(unmodelled)}")
        wanted = req.arg("name_contains", "")
        found = [self._bucket_object(n) for n in sorted(self.buckets) if wanted in n]
        # The document puts the list under result.buckets (r2_bucket list), the SDK's BucketListResponse too.
        return 200, ok({"buckets": found}, {"per_page": len(found), "cursor": ""})

    def create_bucket(self, req: Request) -> Response:
        name = (req.json() or {}).get("name")
        if not isinstance(name, str) or not _BUCKET_NAME.fullmatch(name):
            return 400, error(*BAD_NAME)
        with self.lock:
            if name in self.buckets:
                return 409, error(*NAME_TAKEN)
            self.buckets[name] = {}
            self.bucket_created[name] = self.clock.stamp()
        return 200, ok(self._bucket_object(name))

    def delete_bucket(self, req: Request) -> Response:
        name = req.params["bucket"]
        with self.lock:
            if name not in self.buckets:
                return 404, error(*NO_BUCKET)
            if self.buckets[name]:
                return 409, error(*NOT_EMPTY)
            del self.buckets[name]
            self.bucket_created.pop(name, None)
            self.lifecycles.pop(name, None)
        return 200, ok({})

    def delete_object(self, req: Request) -> Response:
        bucket, key = req.params["bucket"], req.params["key"]
        with self.lock:
            if bucket not in self.buckets:
                return 404, error(*NO_BUCKET)
            # Whether R2 answers a missing key with an error is not published; the stricter reading
            # (404 NoSuchKey, as GET does) keeps a caller from relying on a silent success.
            if key not in self.buckets[bucket]:
                return 404, error(*NO_KEY)
            del self.buckets[bucket][key]
            self.object_modified.pop((bucket, key), None)
        return 200, ok({"key": key})

    def put_lifecycle(self, req: Request) -> Response:
        name = req.params["bucket"]
        if name not in self.buckets:
            return 404, error(*NO_BUCKET)
        rules = (req.json() or {}).get("rules")
        if not isinstance(rules, list):
            return 400, error(10000, "rules must be a list")
        # Each rule as the SDK's own model of a stored rule reads it (id, conditions.prefix and enabled
        # required; cloudflare 5.9.0 types/r2/buckets/lifecycle_get_response.py): what it cannot read
        # back is refused rather than stored.
        for rule in rules:
            try:
                LifecycleRule.model_validate(rule)
            except ValidationError as exc:
                return 400, error(10000, f"lifecycle rule refused: {exc.errors()[0]['msg']}")
        self.lifecycles[name] = rules
        return 200, ok({})

    def get_lifecycle(self, req: Request) -> Response:
        name = req.params["bucket"]
        if name not in self.buckets:
            return 404, error(*NO_BUCKET)
        return 200, ok({"rules": self.lifecycles.get(name, [])})

    def list_objects(self, req: Request) -> Response:
        """One page of the listing, keys in order. Pages as R2 does: `result_info.cursor` names the next
        page while `is_truncated` (the SDK's SyncCursorPagination follows the cursor, cloudflare/
        pagination.py; the fields are the OpenAPI schema's r2_result_info). R2 publishes no default page
        size; the schema's example is 20, and a small page is the stricter model (a caller reading one
        page only is caught with a few dozen objects). `per_page` 1 to 1,000 (S3's max-keys; no bound is
        published for this endpoint, so one outside is refused rather than clamped), and only a cursor
        this double issued is taken (a real one is opaque). The refusals' code 10000 is the double's
        own: R2's code for a malformed list parameter is not published."""
        objects = self.buckets.get(req.params["bucket"])
        if objects is None:
            return 404, error(*NO_BUCKET)
        unmodelled = sorted(set(req.query) - {"prefix", "cursor", "per_page"})
        if unmodelled:  # start_after, delimiter: not modelled, so refused rather than ignored
            return 400, error(10000, f"the double does not model {', '.join(unmodelled)}")
        prefix, bucket = req.arg("prefix", ""), req.params["bucket"]
        cursor_in = req.optional("cursor")
        try:
            per_page = int(req.arg("per_page", str(LIST_PAGE)))
        except ValueError:
            per_page = 0
        if not 1 <= per_page <= 1000 or (cursor_in is not None and cursor_in not in self.cursors_issued):
            return 400, error(10000, "invalid per_page (1 to 1000) or a cursor no listing returned")
        after = base64.urlsafe_b64decode(cursor_in).decode() if cursor_in is not None else None
        keys = [k for k in sorted(objects) if k.startswith(prefix) and (after is None or k > after)]
        page, more = keys[:per_page], len(keys) > per_page
        found = [{"key": k, "size": len(objects[k]), "etag": "e", "storage_class": "Standard",
                  "last_modified": self.object_modified.setdefault((bucket, k), self.clock.stamp())} for k in page]
        cursor = base64.urlsafe_b64encode(page[-1].encode()).decode() if more else ""
        if cursor:
            self.cursors_issued.add(cursor)
        return 200, ok(found, {"is_truncated": more, "per_page": per_page, "cursor": cursor})

    def put_object(self, req: Request) -> Response:
        bucket, key = req.params["bucket"], req.params["key"]
        if bucket not in self.buckets:
            return 404, error(*NO_BUCKET)
        self.buckets[bucket][key] = req.raw
        self.object_modified[(bucket, key)] = self.clock.stamp()
        return 200, ok({"key": key, "etag": uuid.uuid4().hex, "size": str(len(req.raw)),
                        "uploaded": self.object_modified[(bucket, key)], "storage_class": "Standard"})

    def get_object(self, req: Request) -> Reply:
        stored = self.buckets.get(req.params["bucket"], {}).get(req.params["key"])
        if stored is None:
            # R2's codes: 10006 NoSuchBucket, 10007 NoSuchKey, both 404 (developers.cloudflare.com/r2/api/
            # error-codes, "Error code reference"; the message is S3's NoSuchKey wording quoted there).
            missing = NO_BUCKET if req.params["bucket"] not in self.buckets else NO_KEY
            return 404, error(*missing)
        return Bytes(200, stored, "application/octet-stream")


ROUTES = (
    Route("GET", "/accounts/{account}/r2/buckets", R2.list_buckets),
    Route("POST", "/accounts/{account}/r2/buckets", R2.create_bucket),
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}", R2.bucket),
    Route("DELETE", "/accounts/{account}/r2/buckets/{bucket}", R2.delete_bucket),
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}/lifecycle", R2.get_lifecycle),
    Route("PUT", "/accounts/{account}/r2/buckets/{bucket}/lifecycle", R2.put_lifecycle),
    Route("DELETE", "/accounts/{account}/r2/buckets/{bucket}/objects/{key:path}", R2.delete_object),
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}/objects", R2.list_objects),
    Route("PUT", "/accounts/{account}/r2/buckets/{bucket}/objects/{key:path}", R2.put_object),
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}/objects/{key:path}", R2.get_object),
)
