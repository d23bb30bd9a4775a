"""R2: buckets (details), objects (put, get, list by prefix).

A bucket is the SDK's `Bucket` (location lowercase, as its Literal lists).
"""

from __future__ import annotations

import base64
import uuid

from tests.helpers.cf_double.base import Service
from tests.helpers.cf_double.envelope import Response, error, ok
from tests.helpers.cf_double.routes import Bytes, Reply, Request, Route

NO_BUCKET = (10006, "The specified bucket does not exist.")
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

    def _init_r2(self) -> None:
        self.buckets = {}
        self.bucket_created = {}
        self.object_modified = {}
        self.cursors_issued = set()

    def bucket(self, req: Request) -> Response:
        name = req.params["bucket"]
        if name not in self.buckets:
            return 404, error(*NO_BUCKET)
        created = self.bucket_created.setdefault(name, self.clock.stamp())
        return 200, ok({"name": name, "creation_date": created, "location": "weur",
                        "storage_class": "Standard", "jurisdiction": "default"})

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
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}", R2.bucket),
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}/objects", R2.list_objects),
    Route("PUT", "/accounts/{account}/r2/buckets/{bucket}/objects/{key:path}", R2.put_object),
    Route("GET", "/accounts/{account}/r2/buckets/{bucket}/objects/{key:path}", R2.get_object),
)
