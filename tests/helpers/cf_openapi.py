"""Every REST request the API double receives, and every answer it sends, checked against Cloudflare's
published OpenAPI document.

The document is the subset in tests/data/cloudflare-openapi.json (the operations the project calls,
cut from github.com/cloudflare/api-schemas `openapi.json` at the commit its `x-source` names, by
scripts/openapi_subset.py). For a request: the route must be an operation of the document; path
and query parameters must fit their schemas (a query parameter the operation does not define is
refused: the API would ignore it, so code relying on it is wrong); a JSON body must fit the request
body's schema, with no field the schema does not define (a field the API ignores is a field the
code wrongly believes it sets). For an answer: the body must fit the operation's response schema
for that status (the status itself, or its `4XX`/`5XX` class, or `default`).

Schemas are OpenAPI 3.0 (nullable, readOnly/writeOnly, allOf/oneOf/anyOf, formats): validated with
openapi-schema-validator's OAS 3.0 validators (requests as writes, answers as reads). Validators
are compiled once per schema and kept for the whole process.

Where the document at that commit lags the API that the installed SDK speaks, `AMENDMENTS` adds
what is missing, each with its published source; operations the document lacks altogether are in
`NOT_IN_DOCUMENT`, with the reason; those of them that are REST are checked against the installed
SDK's own models instead (tests/helpers/cf_sdk_models.py).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30Validator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.helpers import cf_sdk_models

DOCUMENT = Path(__file__).resolve().parent.parent / "data" / "cloudflare-openapi.json"
BASE_PATH = "/client/v4"  # the API's base URL path; the document's paths start after it
_URI = "urn:cloudflare-openapi"  # where the subset is registered, so its "#/components/..." resolve
METHODS = ("get", "put", "post", "delete", "patch")
# The `code` of the double's 400 to a request the document refuses. The API's codes for such
# refusals vary by service and the document lists none; the document's failure envelope only asks
# for an integer of at least 1000. Callers may rely on the status and the envelope, not the code.
REFUSED_CODE = 1000

# Requests the double answers that are not operations of the REST document. They get the double's
# own checks only.
NOT_IN_DOCUMENT: dict[tuple[str, str], str] = {
    # GraphQL Analytics is one POST whose query is GraphQL, not JSON Schema: the document has no
    # schema for it (its queries are checked against the GraphQL schema, not here).
    ("POST", "/graphql"): "GraphQL",
    # The operations below are in the API (the installed SDK, cloudflare 5.9.0, calls them:
    # resources/d1/database/time_travel.py, resources/r2/buckets/objects.py, and the API reference
    # https://developers.cloudflare.com/api/resources/d1/subresources/database/subresources/time_travel/)
    # but not yet in the document at the commit the subset was cut from: the newest openapi.json of
    # cloudflare/api-schemas that the tooling here can read whole is of 2024-08-06 (later ones are
    # over its 4 MiB file limit). Cut them from a newer document when one is at hand.
    ("GET", "/accounts/{account_id}/d1/database/{database_id}/time_travel/bookmark"): "not in the document yet",
    ("POST", "/accounts/{account_id}/d1/database/{database_id}/time_travel/restore"): "not in the document yet",
    ("GET", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects"): "not in the document yet",
    ("GET", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"): "not in the document yet",
    ("PUT", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"): "not in the document yet",
    # ops/observation/doctor_account.py: the SaaS zone's custom hostname quota (cloudflare 5.9.0
    # resources/custom_hostnames/quota.py) and an account-owned token's checks (cloudflare 5.9.0
    # resources/accounts/tokens/tokens.py `get`, and verify in resources/accounts/tokens/tokens.py):
    # in the API, not in the document of 2024-08.
    ("GET", "/zones/{zone_id}/custom_hostnames/quota"): "not in the document yet",
    ("GET", "/accounts/{account_id}/tokens/verify"): "not in the document yet",
    ("GET", "/accounts/{account_id}/tokens/{token_id}"): "not in the document yet",
    # What the preview engine double (tests/helpers/preview_engine.py) calls as the provider's worker,
    # worker_version and r2_bucket_lifecycle resources do (terraform-provider-cloudflare internal/services/
    # {worker,worker_version,r2_bucket_lifecycle}/resource.go), and the list of Workers `bookingctl preview
    # up` reads for one a lost create left: in the API (cloudflare 5.9.0 resources/workers/beta/workers/,
    # resources/r2/buckets/lifecycle.py, resources/r2/buckets/objects.py `delete`), newer than the
    # document of 2024-08.
    ("POST", "/accounts/{account_id}/workers/workers"): "not in the document yet",
    ("GET", "/accounts/{account_id}/workers/workers"): "not in the document yet",
    ("DELETE", "/accounts/{account_id}/workers/workers/{worker_id}"): "not in the document yet",
    ("POST", "/accounts/{account_id}/workers/workers/{worker_id}/versions"): "not in the document yet",
    # What `bookingctl drift` reads of a Worker and its serving version (ops/observation/drift_workers.py;
    # cloudflare 5.9.0 resources/workers/beta/workers/workers.py and versions.py `get`).
    ("GET", "/accounts/{account_id}/workers/workers/{worker_id}"): "not in the document yet",
    ("GET", "/accounts/{account_id}/workers/workers/{worker_id}/versions/{version_id}"): "not in the document yet",
    ("GET", "/accounts/{account_id}/r2/buckets/{bucket_name}/lifecycle"): "not in the document yet",
    ("PUT", "/accounts/{account_id}/r2/buckets/{bucket_name}/lifecycle"): "not in the document yet",
    ("DELETE", "/accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"): "not in the document yet",
    # Workers Analytics Engine's SQL API takes the SQL as the plain-text body and answers JSON rows
    # (https://developers.cloudflare.com/analytics/analytics-engine/sql-api/): not in the REST
    # document; the double parses the SQL itself (tests/helpers/analytics_engine.py).
    ("POST", "/accounts/{account_id}/analytics_engine/sql"): "SQL API",
}
# Downloads through signed URLs (the D1 export's dump) are not API calls at all: the URL is opaque,
# served by storage, and the double serves it outside BASE_PATH, so it never reaches this module.


@dataclass(frozen=True)
class Amendment:
    """One change to the subset where the document at its commit is wrong about the API, and why."""

    pointer: str  # a JSON Pointer into the subset; a last part "-" appends to a list
    value: Any  # set (or appended) there
    source: str  # the published source that shows the API differs from the document


AMENDMENTS: tuple[Amendment, ...] = (
    # D1's common envelope says `result: {type: object}`, while its own list and query operations
    # say (in an allOf with that envelope) that `result` is an array: no answer of theirs could fit
    # both. The operations are right (the SDK reads both as lists: cloudflare 5.9.0
    # resources/d1/database/database.py `list` and `query` page over `result`).
    Amendment("/components/schemas/d1_api-response-common/properties/result", {},
              "the document's own cloudflare-d1-list-databases and cloudflare-d1-query-database"),
    # A query's `meta` has grown since 2024-08: where it ran and how long the SQL took.
    *(Amendment(f"/components/schemas/d1_query-meta/properties/{name}", schema,
                "cloudflare 5.9.0 types/d1/query_result.py (Meta), generated from the current document")
      for name, schema in (("served_by_colo", {"type": "string"}), ("served_by_primary", {"type": "boolean"}),
                           ("served_by_region", {"type": "string",
                                                 "enum": ["WNAM", "ENAM", "WEUR", "EEUR", "APAC", "OC"]}),
                           ("timings", {"type": "object",
                                        "properties": {"sql_duration_ms": {"type": "number"}}}))),
    # An export still running answers `status: "active"`; the document (and the SDK's model) list
    # only complete and error. Wrangler polls on while the status is neither, re-sending
    # `current_bookmark: at_bookmark` (cloudflare/workers-sdk packages/wrangler/src/d1/types.ts
    # ExportPollingResponse `status: "active" | "error"` at 031f1238; src/d1/export.ts at 0062cfd7).
    Amendment("/paths/~1accounts~1{account_id}~1d1~1database~1{database_id}~1export/post/responses/200/content/"
              "application~1json/schema/allOf/1/properties/result/properties/status/enum",
              ["complete", "error", "active"], "wrangler's ExportPollingResponse (above)"),
    # A deployment may give a version 0 %: "Create a new deployment ... and specify 0% for the new
    # version whilst keeping the previous version at 100%", then reach it with a version override
    # (cloudflare-docs src/content/docs/workers/configuration/versions-and-deployments/version-overrides.mdx;
    # wrangler versions deploy accepts 0-100, packages/wrangler/src/versions/deploy.ts at 01118789).
    # The document's `minimum: 0.01` (which the Terraform provider copies) is stricter than the API.
    Amendment("/components/schemas/workers_deployments-strategy-percentage/properties/versions/items/properties/"
              "percentage/minimum", 0, "the version overrides guide (above)"),
    # `annotations.workers/message`: the document of 2024-08 says at most 50 characters; the current
    # one says "Human-readable message about the deployment. Truncated to 1000 bytes if longer." (as
    # generated into cloudflare 5.9.0 types/workers/scripts/deployment_create_params.py): longer
    # messages are cut, not refused. The double cuts them too (cf_double/workers.py, _deploy).
    Amendment("/components/schemas/workers_deployments-base/properties/annotations/properties/workers~1message",
              {"type": "string"}, "cloudflare 5.9.0 deployment_create_params.py (above)"),
    # Custom hostname ids are UUIDs, 36 characters: the document itself says so for the list's `id`
    # filter ("Hostname ID to match against", minLength = maxLength = 36), but types the object's
    # `id` and the `{custom_hostname_id}` path parameter with the zone identifier (at most 32).
    *(Amendment(pointer, {"type": "string", "minLength": 36, "maxLength": 36},
                "the document's own `id` query parameter of custom-hostname-for-a-zone-list-custom-hostnames")
      for pointer in ["/components/schemas/tls-certificates-and-hostnames_customhostname/properties/id",
                      "/components/schemas/tls-certificates-and-hostnames_custom-hostname/properties/id",
                      "/paths/~1zones~1{zone_id}~1custom_hostnames~1{custom_hostname_id}/delete/responses/200/content/"
                      "application~1json/schema/properties/id",
                      *(f"/paths/~1zones~1{{zone_id}}~1custom_hostnames~1{{custom_hostname_id}}/{m}/parameters/0/schema"
                        for m in ("get", "patch", "delete"))]),
    # A certificate's validation record carries its own status (and CNAME validation's fields)
    # since 2024-08 (cloudflare 5.9.0 types/custom_hostnames/custom_hostname_create_response.py
    # SSLValidationRecord: cname, cname_target, status).
    *(Amendment(f"/components/schemas/tls-certificates-and-hostnames_validation_record/properties/{name}",
                {"type": "string"}, "cloudflare 5.9.0 SSLValidationRecord")
      for name in ("cname", "cname_target", "status")),
    # The list filters by hostname exactly, by prefix or by substring since 2024-08 (query
    # `hostname.exact`, `hostname.startsWith`, `hostname.contain`; cloudflare 5.9.0
    # types/custom_hostnames/custom_hostname_list_params.py `Hostname`, sent as dotted names).
    *(Amendment("/paths/~1zones~1{zone_id}~1custom_hostnames/get/parameters/-",
                {"in": "query", "name": f"hostname.{name}", "schema": {"type": "string", "maxLength": 255}},
                "cloudflare 5.9.0 custom_hostname_list_params.py (Hostname)")
      for name in ("exact", "startsWith", "contain")),
    # Turnstile widgets have gained `ephemeral_id` (required in every answer) and a `filter` on the
    # list (`name:<substring>` or `sitekey:<the whole key>`) since 2024-08; a PUT may set `ephemeral_id` and
    # `region` (cloudflare 5.9.0 types/turnstile/widget.py, widget_list_response.py,
    # widget_list_params.py, widget_update_params.py, generated from the current document).
    *(Amendment(f"/components/schemas/{schema}/properties/ephemeral_id", {"type": "boolean"},
                "cloudflare 5.9.0 types/turnstile/widget.py and widget_list_response.py")
      for schema in ("turnstile_widget_list", "turnstile_widget_detail")),
    *(Amendment(f"/components/schemas/{schema}/required/-", "ephemeral_id",
                "cloudflare 5.9.0 types/turnstile/widget.py and widget_list_response.py (not Optional)")
      for schema in ("turnstile_widget_list", "turnstile_widget_detail")),
    *(Amendment(f"/components/schemas/{schema}/properties/{name}",
                {"type": "string", "enum": ["wrangler", "dashboard", "spin", "api", "unknown"]},
                "cloudflare 5.9.0 types/turnstile/widget.py and widget_list_response.py")
      for schema in ("turnstile_widget_list", "turnstile_widget_detail")
      for name in ("deployed_via", "last_modified_via")),
    Amendment("/paths/~1accounts~1{account_id}~1challenges~1widgets/parameters/-",
              {"in": "query", "name": "filter", "schema": {"type": "string"}},
              "cloudflare 5.9.0 types/turnstile/widget_list_params.py (filter)"),
    *(Amendment(f"/paths/~1accounts~1{{account_id}}~1challenges~1widgets~1{{sitekey}}/put/requestBody/content/"
                f"application~1json/schema/properties/{name}", schema,
                "cloudflare 5.9.0 types/turnstile/widget_update_params.py")
      for name, schema in (("ephemeral_id", {"type": "boolean"}),
                           ("region", {"$ref": "#/components/schemas/turnstile_region"}))),
    # The zone's ruleset list pages with a cursor since 2024-08 (cloudflare 5.9.0
    # types/rulesets/ruleset_list_params.py: `cursor: str`, `per_page: int`, generated from the
    # current document). No bound is published beyond the type; the double refuses below 1.
    *(Amendment("/paths/~1zones~1{zone_id}~1rulesets/get/parameters/-",
                {"in": "query", "name": name, "schema": schema},
                "cloudflare 5.9.0 types/rulesets/ruleset_list_params.py")
      for name, schema in (("cursor", {"type": "string"}), ("per_page", {"type": "integer", "minimum": 1}))),
    # ... and its answer says where the next page starts (cloudflare 5.9.0 pagination.py
    # CursorPaginationResultInfo: count, cursor, per_page; the SDK's rulesets.list pages with it).
    Amendment("/components/responses/rulesets_Rulesets/content/application~1json/schema/allOf/1/properties/"
              "result_info", {"type": "object", "properties": {"count": {"type": "integer"},
                                                               "cursor": {"type": "string"},
                                                               "per_page": {"type": "integer"}}},
              "cloudflare 5.9.0 pagination.py CursorPaginationResultInfo"),
    # A ruleset's `id` is readOnly (OAS 3.0: a required readOnly property is required in answers
    # only), but the document says so inside an `allOf`, where the validator does not look: a
    # create request, which cannot know its id, would be refused for lacking one.
    Amendment("/components/schemas/rulesets_Ruleset/properties/id/readOnly", True,
              "the document's own `{allOf: [..., {readOnly: true}]}` on rulesets_Ruleset.id"),
    # Likewise `version`, readOnly behind a `$ref` (rulesets_RulesetVersion): inlined here.
    Amendment("/components/schemas/rulesets_Ruleset/properties/version",
              {"pattern": "^[0-9]+$", "readOnly": True, "type": "string"},
              "the document's own rulesets_RulesetVersion (readOnly)"),
    # A rule's rate limit (the http_ratelimit phase's rules carry one): on every rule kind since
    # 2024-08 (cloudflare 5.9.0 types/rulesets/block_rule_param.py `Ratelimit`, the same on every
    # *_rule_param.py; characteristics and period required). Which values a zone's plan accepts
    # the double checks itself (booking_shared/limits.py).
    Amendment("/components/schemas/rulesets_Rule/properties/ratelimit",
              {"type": "object", "required": ["characteristics", "period"], "properties": {
                  "characteristics": {"type": "array", "items": {"type": "string"}},
                  "period": {"type": "integer"}, "counting_expression": {"type": "string"},
                  "mitigation_timeout": {"type": "integer"}, "requests_per_period": {"type": "integer"},
                  "requests_to_origin": {"type": "boolean"}, "score_per_period": {"type": "integer"},
                  "score_response_header_name": {"type": "string"}}},
              "cloudflare 5.9.0 types/rulesets/block_rule_param.py (Ratelimit)"),
    # An R2 bucket names its jurisdiction since 2024-08 (cloudflare 5.9.0 types/r2/bucket.py).
    Amendment("/components/schemas/r2_bucket/properties/jurisdiction",
              {"type": "string", "enum": ["default", "eu", "us", "fedramp", "fedramp-high"]},
              "cloudflare 5.9.0 types/r2/bucket.py"),
    # A zone's status, pause, type and plan: in every answer of GET /zones/{zone_id} (the SDK's
    # `Zone` requires `plan`), absent from the document's zones_zone of 2024-08 (cloudflare 5.9.0
    # types/zones/zone.py: Zone, Plan; types/zones/type.py: Type).
    *(Amendment(f"/components/schemas/zones_zone/properties/{name}", schema, "cloudflare 5.9.0 types/zones/zone.py")
      for name, schema in (
          ("status", {"type": "string", "enum": ["initializing", "pending", "active", "moved"]}),
          ("paused", {"type": "boolean"}),
          ("type", {"type": "string", "enum": ["full", "partial", "secondary", "internal"]}),
          ("plan", {"type": "object", "properties": {
              "id": {"type": "string"}, "can_subscribe": {"type": "boolean"}, "currency": {"type": "string"},
              "externally_managed": {"type": "boolean"}, "frequency": {"type": "string"},
              "is_subscribed": {"type": "boolean"}, "legacy_discount": {"type": "boolean"},
              "legacy_id": {"type": "string"}, "name": {"type": "string"}, "price": {"type": "number"}}}))),
    # Creating a DNS record: the document's body is the stored record (dns-records_dns-record), whose
    # top-level `required` lists id, proxiable, created_on and modified_on, readOnly fields the API
    # assigns (readOnly in dns-records_base, which a top-level `required` does not see): no create
    # could carry them. The body is the same records without those four (cloudflare 5.9.0
    # types/dns/record_create_params.py: per type, `name` and `type` required, no id or timestamps).
    Amendment("/components/schemas/dns-records_dns-record-create",
              {"type": "object", "required": ["type", "name", "content"],
               "oneOf": [{"$ref": f"#/components/schemas/dns-records_{kind}Record"} for kind in (
                   "A", "AAAA", "CAA", "CERT", "CNAME", "DNSKEY", "DS", "HTTPS", "LOC", "MX", "NAPTR", "NS", "PTR",
                   "SMIMEA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI")]},
              "cloudflare 5.9.0 types/dns/record_create_params.py"),
    Amendment("/paths/~1zones~1{zone_id}~1dns_records/post/requestBody/content/application~1json/schema",
              {"$ref": "#/components/schemas/dns-records_dns-record-create"},
              "cloudflare 5.9.0 types/dns/record_create_params.py"),
    # Listing R2 buckets answers `result: {buckets: [...]}` (cloudflare 5.9.0 types/r2/bucket_list_response.py,
    # BucketListResponse.buckets, read through ResultWrapper), not the bare array of the 2024-08 document.
    Amendment("/paths/~1accounts~1{account_id}~1r2~1buckets/get/responses/200/content/application~1json/schema/"
              "allOf/1/properties/result",
              {"type": "object", "properties": {"buckets": {"type": "array", "items": {
                  "$ref": "#/components/schemas/r2_bucket"}}}},
              "cloudflare 5.9.0 types/r2/bucket_list_response.py"),
    # Deleting a DNS record answers in the v4 envelope like every other operation (the SDK reads it
    # through ResultWrapper[RecordDeleteResponse], cloudflare 5.9.0 resources/dns/records.py `delete`);
    # the document's answer schema names only `result`.
    Amendment("/paths/~1zones~1{zone_id}~1dns_records~1{dns_record_id}/delete/responses/200/content/"
              "application~1json/schema/properties/success", {"type": "boolean"},
              "cloudflare 5.9.0 resources/dns/records.py"),
    Amendment("/paths/~1zones~1{zone_id}~1dns_records~1{dns_record_id}/delete/responses/200/content/"
              "application~1json/schema/properties/errors", {"type": "array"},
              "cloudflare 5.9.0 resources/dns/records.py"),
    Amendment("/paths/~1zones~1{zone_id}~1dns_records~1{dns_record_id}/delete/responses/200/content/"
              "application~1json/schema/properties/messages", {"type": "array"},
              "cloudflare 5.9.0 resources/dns/records.py"),
    # A Pages project's deployment config: the SDK's current model requires fields the 2024-08 document
    # does not list (cloudflare 5.9.0 types/pages/project.py DeploymentConfigsPreview/Production).
    *(Amendment(f"/components/schemas/pages_deployment_configs_values/properties/{name}", schema,
                "cloudflare 5.9.0 types/pages/project.py")
      for name, schema in (("always_use_latest_compatibility_date", {"type": "boolean"}),
                           ("build_image_major_version", {"type": "integer"}), ("fail_open", {"type": "boolean"}),
                           ("usage_model", {"type": "string", "enum": ["standard", "bundled", "unbound"]}))),
    *(Amendment(f"/components/schemas/pages_projects/properties/{name}", {"type": "string"},
                "cloudflare 5.9.0 types/pages/project.py (Project)")
      for name in ("framework", "framework_version", "preview_script_name", "production_script_name")),
    # A notification mechanism's id is a uuid (a webhook's) or any string (an e-mail address): the
    # document's oneOf of a maxLength-36 string and any string accepts an address under both, so no
    # answer holding one fits; anyOf is what it means (cloudflare 5.9.0 types/alerting/mechanism.py:
    # `id: Optional[str]`).
    Amendment("/components/schemas/aaa_mechanisms/additionalProperties/items/properties/id",
              {"type": "string"}, "cloudflare 5.9.0 types/alerting/mechanism.py"),
    # A Pages domain is named by its hostname in the path (the provider's pages_domain Delete passes
    # `data.Name`, the domain, terraform-provider-cloudflare internal/services/pages_domain/resource.go,
    # a2efdc578); the document's pages_domain_name copies the project name's pattern, which has no dot.
    Amendment("/components/schemas/pages_domain_name/pattern",
              r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
              "the provider's pages_domain resource (above)"),
)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    path_params: dict[str, dict[str, Any]]  # name -> schema
    query_params: dict[str, tuple[bool, dict[str, Any]]]  # name -> (required, schema)
    body: dict[str, Any] | None  # the JSON body's schema (None: the operation takes no JSON body)
    body_required: bool
    responses: dict[str, dict[str, Any] | None]  # status / "4XX" / "default" -> JSON schema (None: no body)


class OpenApiCheck:
    """The subset as request and response checks; `problem_*` return None or what is wrong."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.source = document.get("x-source", {})
        self._registry: Registry[Any] = Registry().with_resource(
            _URI, Resource.from_contents(document, default_specification=DRAFT4))
        self._validators: dict[tuple[int, str], Any] = {}
        self.operations: list[Operation] = []
        for template, item in document["paths"].items():
            shared = item.get("parameters", [])
            for method in METHODS:
                if method in item:
                    self.operations.append(self._operation(method.upper(), template, item[method], shared))
        # Literal segments before parameters: `/custom_hostnames/fallback_origin` is not a hostname id.
        self.operations.sort(key=lambda op: (-sum(not s.startswith("{") for s in op.template.split("/")),
                                             op.template))
        self._exempt = [(method, _template_pattern(template), template) for method, template in NOT_IN_DOCUMENT]

    # --- the document --------------------------------------------------------------------------

    def resolve(self, schema: Any) -> Any:
        """`schema` with its `$ref` (if any) followed, within the subset."""
        while isinstance(schema, dict) and "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def _operation(self, method: str, template: str, op: dict[str, Any], shared: list[Any]) -> Operation:
        params = [self.resolve(p) for p in shared + op.get("parameters", [])]
        path_params = {p["name"]: p.get("schema", {}) for p in params if p["in"] == "path"}
        query = {p["name"]: (bool(p.get("required")), p.get("schema", {})) for p in params if p["in"] == "query"}
        body, body_required = None, False
        if "requestBody" in op:
            request_body = self.resolve(op["requestBody"])
            media = request_body.get("content", {}).get("application/json")
            if media is not None and "schema" in media:
                body, body_required = media["schema"], bool(request_body.get("required"))
        responses: dict[str, dict[str, Any] | None] = {}
        for status, answer in op.get("responses", {}).items():
            media = self.resolve(answer).get("content", {}).get("application/json")
            responses[status] = media.get("schema") if media else None
        return Operation(method, template, op.get("operationId", ""), _template_pattern(template), path_params,
                         query, body, body_required, responses)

    def validator(self, schema: dict[str, Any], mode: str) -> Any:
        """The compiled OAS 3.0 validator of `schema` (a part of the subset), cached.

        `mode`: "write" for request bodies (readOnly fields refused), "read" for answers (writeOnly
        fields refused), "parameter" for path and query values (readOnly means nothing there).
        """
        key = (id(schema), mode)
        found = self._validators.get(key)
        if found is None:
            cls = {"write": OAS30WriteValidator, "read": OAS30ReadValidator, "parameter": OAS30Validator}[mode]
            # `$ref`s inside `schema` are relative to the whole document, not to `schema`.
            found = cls(schema, registry=self._registry, format_checker=cls.FORMAT_CHECKER,
                        _resolver=self._registry.resolver(base_uri=_URI))
            self._validators[key] = found
        return found

    def _not_in_document(self, method: str, path: str) -> tuple[str, cf_sdk_models.SdkOperation | None] | None:
        """(the NOT_IN_DOCUMENT template `path` matches, the SDK's description of it or None: not REST),
        or None when the document has the operation."""
        template = next((t for m, p, t in self._exempt if m == method and p.fullmatch(path)), None)
        return None if template is None else (template, cf_sdk_models.OPERATIONS.get((method, template)))

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.operations:
            if op.method == method:
                match = op.pattern.fullmatch(path)
                if match:
                    return op, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    # --- requests --------------------------------------------------------------------------------

    def problem_with_request(self, method: str, path: str, query: dict[str, list[str]],
                             content_type: str | None, raw: bytes) -> str | None:
        """What the API would reject in this request (`path` below BASE_PATH), or None."""
        exempt = self._not_in_document(method, path)
        if exempt is not None:
            template, sdk = exempt
            return None if sdk is None else cf_sdk_models.problem_with_query(sdk, template, query)
        found = self.find(method, path)
        if found is None:
            return (f"{method} {path} is not an operation of the OpenAPI subset: add it to "
                    "tests/data/cloudflare-openapi-paths.txt and rebuild the subset (scripts/openapi_subset.py), "
                    "or to NOT_IN_DOCUMENT in tests/helpers/cf_openapi.py with the reason")
        op, values = found
        where = op.operation_id
        for name, value in values.items():
            error = self._first_error(op.path_params.get(name, {}), value, "parameter")
            if error:
                return f"path parameter {name}={value!r}: {error} ({where})"
        for name, values_given in query.items():
            if name not in op.query_params:
                known = ", ".join(sorted(op.query_params)) or "none"
                return f"query parameter {name!r} is not one of the operation's ({known}) ({where})"
            error = self._query_error(op.query_params[name][1], values_given)
            if error:
                return f"query parameter {name}={values_given!r}: {error} ({where})"
        missing = [n for n, (required, _) in op.query_params.items() if required and n not in query]
        if missing:
            return f"required query parameter(s) {', '.join(missing)} missing ({where})"
        return self._body_problem(op, content_type, raw, where)

    def _body_problem(self, op: Operation, content_type: str | None, raw: bytes, where: str) -> str | None:
        if op.body is None:
            return None
        if not raw:
            return f"a JSON body is required ({where})" if op.body_required else None
        if content_type is None or content_type.split(";")[0].strip() != "application/json":
            return f"the body must be application/json, not {content_type!r} ({where})"
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return f"the body is not JSON ({exc}) ({where})"
        error = self._first_error(op.body, body, "write")
        if error:
            return f"body: {error} ({where})"
        unknown = next(self.unknown_fields(op.body, body, "body"), None)
        if unknown:
            return f"{unknown} ({where})"
        return None

    def _query_error(self, schema: dict[str, Any], values: list[str]) -> str | None:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind == "array":
            items = self.resolve(schema.get("items", {}))
            converted: list[Any] = []
            for value in values:
                item, error = _from_query(items.get("type"), value)
                if error:
                    return error
                converted.append(item)
            return self._first_error(schema, converted, "parameter")
        if len(values) != 1:
            return "given more than once"
        value, error = _from_query(kind, values[0])
        return error or self._first_error(schema, value, "parameter")

    # --- answers ---------------------------------------------------------------------------------

    def problem_with_response(self, method: str, path: str, status: int, body: Any) -> str | None:
        """What in the double's answer the document does not allow, or None."""
        exempt = self._not_in_document(method, path)
        if exempt is not None:
            sdk = exempt[1]
            return None if sdk is None else cf_sdk_models.problem_with_result(sdk, status, body)
        found = self.find(method, path)
        if found is None:
            return None  # the request was already refused for its route
        op = found[0]
        # A range is "4XX" in OAS 3.0; four operations of the document spell it "4xx": read alike.
        spelled = {k.upper(): k for k in op.responses}
        key = next((spelled[k] for k in (str(status), f"{status // 100}XX", "DEFAULT") if k in spelled), None)
        if key is None:
            return f"status {status} is not an answer of {op.operation_id} (it has {', '.join(op.responses)})"
        schema = op.responses[key]
        if schema is None:
            return None
        if status >= 400:
            schema = self._failure_part(schema)
        error = self._first_error(schema, body, "read")
        if error:
            return f"answer {status}: {error} ({op.operation_id})"
        unknown = next(self.unknown_fields(schema, body, "answer"), None)
        if unknown:
            return f"answer {status}: {unknown} ({op.operation_id})"
        return None

    def _failure_part(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The error envelope of an error answer's schema.

        The document writes most `4XX` answers as `allOf: [<the success answer>, <...-failure>]`,
        which no answer can fit: the success envelope says `success: true` (enum [true]), the
        failure envelope `success: false`. The failure envelope is the part that describes an
        error, so an error answer is checked against it alone.
        """
        parts: list[dict[str, Any]] = schema.get("allOf", [])
        for part in parts:
            if str(part.get("$ref", "")).endswith("api-response-common-failure"):
                return part  # the same object: validators are cached by identity
        return schema

    # --- schema walking --------------------------------------------------------------------------

    def _first_error(self, schema: dict[str, Any], instance: Any, mode: str) -> str | None:
        errors = sorted(self.validator(schema, mode).iter_errors(instance), key=lambda e: list(e.path))
        if not errors:
            return None
        error = _deepest(errors[0])
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{'at ' + where + ': ' if where else ''}{error.message}"

    def unknown_fields(self, schema: Any, instance: Any, where: str) -> Iterator[str]:
        """Fields of `instance` that `schema` does not define, where it lists the fields it has.

        OpenAPI leaves objects open unless `additionalProperties: false`; Cloudflare's document
        never says it, but a field it does not list is one the API ignores (or refuses): for a
        request, the code believes it sets something it does not; for an answer, the double
        invents a field. An object schema without `properties` (a free-form map) stays open.
        """
        if isinstance(instance, list):
            items = [self.resolve(s).get("items") for s in self._branches(schema, instance)]
            for index, item in enumerate(instance):
                for sub in items:
                    if sub is not None:
                        yield from self.unknown_fields(sub, item, f"{where}/{index}")
            return
        if not isinstance(instance, dict):
            return
        branches = self._branches(schema, instance)
        known: dict[str, list[Any]] = {}
        open_object = not any("properties" in b for b in branches)
        for branch in branches:
            extra = branch.get("additionalProperties")
            if extra is True or isinstance(extra, dict):
                open_object = True
            for name, sub in branch.get("properties", {}).items():
                known.setdefault(name, []).append(sub)
        for name, value in instance.items():
            if name not in known:
                if not open_object:
                    yield f"{where}/{name} is not a field of the schema (it has {', '.join(sorted(known))})"
                continue
            for sub in known[name]:
                yield from self.unknown_fields(sub, value, f"{where}/{name}")

    def _branches(self, schema: Any, instance: Any) -> list[dict[str, Any]]:
        """The schema and its `allOf` parts, with those `anyOf`/`oneOf` parts the instance fits."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return []
        found = [schema]
        for part in schema.get("allOf", []):
            found += self._branches(part, instance)
        for key in ("anyOf", "oneOf"):
            for part in schema.get(key, []):
                if self._first_error(part, instance, "parameter") is None:
                    found += self._branches(part, instance)
        return found


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{([^}]+)\}", template)
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(pattern)


def _from_query(kind: Any, value: str) -> tuple[Any, str | None]:
    """A query string value as the JSON value its schema type reads it as."""
    try:
        if kind == "integer":
            return int(value), None
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() else number, None
    except ValueError:
        return value, f"{value!r} is not a {kind}"
    if kind == "boolean":
        if value not in ("true", "false"):
            return value, f"{value!r} is not a boolean (true or false)"
        return value == "true", None
    return value, None


def _deepest(error: ValidationError) -> ValidationError:
    """For a failed oneOf/anyOf, the error of the branch that came closest (the longest path)."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.context or [])))
    return error


@cache
def load() -> OpenApiCheck:
    """The checks of the committed subset, with AMENDMENTS applied (once per process)."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    for amendment in AMENDMENTS:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in amendment.pointer.split("/")[1:]]
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if last == "-":
            node.append(copy.deepcopy(amendment.value))
        else:
            node[last] = copy.deepcopy(amendment.value)
    return OpenApiCheck(document)
