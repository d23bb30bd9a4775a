"""The double's R2 answers a missing object as R2 does: 404 with code 10007 NoSuchKey, and a missing
bucket with 10006 NoSuchBucket (developers.cloudflare.com/r2/api/error-codes). The old double answered
a missing key as an unknown route (7000)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.helpers import ACCOUNT
from tests.helpers.cf_double import TOKEN, CloudflareDouble


def get(double: CloudflareDouble, path: str) -> tuple[int, bytes]:
    request = urllib.request.Request(double.base_url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_an_object_is_read_back_as_its_bytes(double: CloudflareDouble) -> None:
    double.buckets["b"] = {"a.sql": b"CREATE TABLE x (y);"}
    assert get(double, f"/accounts/{ACCOUNT}/r2/buckets/b/objects/a.sql") == (200, b"CREATE TABLE x (y);")


@pytest.mark.parametrize("bucket, code", [("b", 10007), ("missing", 10006)])
def test_a_missing_object_or_bucket_answers_r2s_not_found_code(double: CloudflareDouble, bucket: str,
                                                              code: int) -> None:
    double.buckets["b"] = {}
    status, body = get(double, f"/accounts/{ACCOUNT}/r2/buckets/{bucket}/objects/none.sql")
    assert status == 404
    assert [e["code"] for e in json.loads(body)["errors"]] == [code]
