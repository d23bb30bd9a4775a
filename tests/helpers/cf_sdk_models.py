"""The REST operations the OpenAPI subset lacks, checked against the installed SDK's own models.

cf_openapi.NOT_IN_DOCUMENT lists operations the project calls that the newest readable OpenAPI
document of cloudflare/api-schemas (2024-08-06) does not have. The `cloudflare` SDK (5.9.0 here) is
generated from Cloudflare's newer OpenAPI spec ("File generated from our OpenAPI spec by Stainless"
heads each of its type modules), so its request-params TypedDicts and response models are the
published description of those operations that is at hand. For each: a query parameter the SDK's
params do not define is refused (the path's own parameters and the SDK's header parameters aside),
and the answer's `result` must validate against the SDK's response model with no field the model
does not define. GraphQL and the Analytics Engine SQL API are not REST and keep their own checks.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Any

from cloudflare.types.accounts.token_verify_response import TokenVerifyResponse
from cloudflare.types.custom_hostnames.quota_get_response import QuotaGetResponse
from cloudflare.types.d1.database.time_travel_get_bookmark_params import TimeTravelGetBookmarkParams
from cloudflare.types.d1.database.time_travel_get_bookmark_response import TimeTravelGetBookmarkResponse
from cloudflare.types.d1.database.time_travel_restore_params import TimeTravelRestoreParams
from cloudflare.types.d1.database.time_travel_restore_response import TimeTravelRestoreResponse
from cloudflare.types.r2.buckets.lifecycle_get_response import LifecycleGetResponse
from cloudflare.types.r2.buckets.object_delete_response import ObjectDeleteResponse
from cloudflare.types.r2.buckets.object_list_params import ObjectListParams
from cloudflare.types.r2.buckets.object_list_response import ObjectListResponse
from cloudflare.types.r2.buckets.object_upload_response import ObjectUploadResponse
from cloudflare.types.shared.token import Token
from cloudflare.types.workers.beta.worker import Worker
from cloudflare.types.workers.beta.worker_list_params import WorkerListParams
from cloudflare.types.workers.beta.workers.version import Version
from cloudflare.types.workers.beta.workers.version_create_params import VersionCreateParams
from cloudflare.types.workers.beta.workers.version_get_params import VersionGetParams
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class SdkOperation:
    params: type | None  # the SDK's request params (a TypedDict); None: the operation takes no query
    response: type[BaseModel] | None  # the model of `result`; None: the answer is not a JSON envelope
    listed: bool = False  # `result` is a list of `response`

    @functools.cached_property  # every request the double answers asks; the hints never change
    def query_names(self) -> frozenset[str]:
        """The params' keys that travel in the query: not path parameters (in the template) and not
        header parameters (those the SDK aliases to a hyphenated header name)."""
        if self.params is None:
            return frozenset()
        hints = typing.get_type_hints(self.params, include_extras=True)
        names = set()
        for name, hint in hints.items():
            aliases = [getattr(m, "alias", None) for m in getattr(hint, "__metadata__", ())]
            if not any(isinstance(a, str) and "-" in a for a in aliases):
                names.add(name)
        return frozenset(names)


# (method, template below /client/v4) -> the SDK's description (cloudflare 5.9.0: resources/d1/database/
# time_travel.py, resources/r2/buckets/objects.py, resources/custom_hostnames/quota.py,
# resources/accounts/tokens/tokens.py: each method's `cast_to` names the response model).
OPERATIONS: dict[tuple[str, str], SdkOperation] = {
    ("GET", "/accounts/{account_id}/d1/database/{database_id}/time_travel/bookmark"):
        SdkOperation(TimeTravelGetBookmarkParams, TimeTravelGetBookmarkResponse),
    ("POST", "/accounts/{account_id}/d1/database/{database_id}/time_travel/restore"):
        SdkOperation(TimeTravelRestoreParams, TimeTravelRestoreResponse),
    ("GET", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects"):
        SdkOperation(ObjectListParams, ObjectListResponse, listed=True),
    ("GET", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"):
        SdkOperation(None, None),  # the object's bytes (cast_to=BinaryAPIResponse)
    ("PUT", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"):
        SdkOperation(None, ObjectUploadResponse),
    ("GET", "/zones/{zone_id}/custom_hostnames/quota"): SdkOperation(None, QuotaGetResponse),
    # resources/workers/beta/workers/workers.py `create`/`list`/`delete` and versions.py `create` (its `deploy`
    # travels in the query), resources/r2/buckets/lifecycle.py, resources/r2/buckets/objects.py `delete`.
    ("POST", "/accounts/{account_id}/workers/workers"): SdkOperation(None, Worker),
    ("GET", "/accounts/{account_id}/workers/workers"): SdkOperation(WorkerListParams, Worker, listed=True),
    ("DELETE", "/accounts/{account_id}/workers/workers/{worker_id}"): SdkOperation(None, None),
    ("POST", "/accounts/{account_id}/workers/workers/{worker_id}/versions"): SdkOperation(VersionCreateParams,
                                                                                            Version),
    # drift's reads (resources/workers/beta/workers/workers.py and versions.py `get`; the version's `include`
    # travels in the query).
    ("GET", "/accounts/{account_id}/workers/workers/{worker_id}"): SdkOperation(None, Worker),
    ("GET", "/accounts/{account_id}/workers/workers/{worker_id}/versions/{version_id}"):
        SdkOperation(VersionGetParams, Version),
    ("GET", "/accounts/{account_id}/r2/buckets/{bucket_name}/lifecycle"): SdkOperation(None, LifecycleGetResponse),
    ("PUT", "/accounts/{account_id}/r2/buckets/{bucket_name}/lifecycle"): SdkOperation(None, None),
    ("DELETE", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"):
        SdkOperation(None, ObjectDeleteResponse),
    ("GET", "/accounts/{account_id}/tokens/verify"): SdkOperation(None, TokenVerifyResponse),
    ("GET", "/accounts/{account_id}/tokens/{token_id}"): SdkOperation(None, Token),
}


def problem_with_query(operation: SdkOperation, template: str, query: dict[str, list[str]]) -> str | None:
    in_path = {part.strip("{}") for part in template.split("/") if part.startswith("{")}
    allowed = operation.query_names - in_path
    for name in query:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            return f"query parameter {name!r} is not one of the SDK's ({known})"
    return None


def problem_with_result(operation: SdkOperation, status: int, body: Any) -> str | None:
    if operation.response is None or status >= 400 or not isinstance(body, dict):
        return None  # bytes, or a failure envelope (checked by the double's envelope rules)
    result = body.get("result")
    items = result if operation.listed else [result]
    if operation.listed and not isinstance(result, list):
        return f"result is {type(result).__name__}, the SDK lists {operation.response.__name__}"
    for item in items:
        if not isinstance(item, dict):
            return f"result item is {type(item).__name__}, the SDK expects {operation.response.__name__}"
        unknown = sorted(set(item) - _field_names(operation.response))
        if unknown:
            return f"{operation.response.__name__} has no field {', '.join(unknown)}"
        try:
            operation.response.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            return f"{operation.response.__name__}.{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return None


def _field_names(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}
