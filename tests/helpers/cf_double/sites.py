"""What puts a stack's site on a hostname: DNS records, Workers routes, Pages projects and their domains.

The operations the provider's dns_record, workers_route, pages_project and pages_domain resources
call (terraform-provider-cloudflare internal/services/*/resource.go, a2efdc578: `DNS.Records.New/Delete`,
`Workers.Routes.New/Delete`, `Pages.Projects.New/Delete`, `Pages.Projects.Domains.New/Delete`), each
checked against the OpenAPI document (tests/helpers/cf_openapi.py). Refusals, with their sources:
- DNS: a CNAME beside another A/AAAA/CNAME of the same name, or the other way round: 400, code 81053,
  "An A, AAAA, or CNAME record with that host already exists." (cloudflare-docs dns/manage-dns-records/
  troubleshooting/records-with-same-name; the code and wording as the API answers them in
  HermanMartinus/bearblog issue 105). Every other refusal's code is not published: 10000 is the
  double's own, so callers may rely on the status only. A name outside the zone is refused.
- Workers routes: a second route with the same pattern, a pattern on another zone's hostname, or a
  script the account has not: refused with the double's own code 10000 (the API's codes for these are
  not published), 409 for the duplicate and 400 for the rest.
- Pages: a second project of the same name, or a domain already on the project: 409. A project with
  domains cannot be deleted: stricter than the API is known to be (its behaviour is not published), so
  a destroy that leaves domains behind is caught.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.helpers.cf_double.envelope import Refusal, Response, error, ok
from tests.helpers.cf_double.routes import Request, Route
from tests.helpers.cf_double.workers_beta import WorkersBeta
from tests.helpers.cf_double.zones import Zones

_ADDRESS_TYPES = {"A", "AAAA", "CNAME"}
_PAGES_CONFLICT = 10000
# A deployment config's fields the SDK's DeploymentConfigsPreview/Production require, at the values a
# project made without them shows (the dashboard's defaults; their exact values are not published).
_DEFAULT_CONFIG: dict[str, Any] = {"always_use_latest_compatibility_date": False, "build_image_major_version": 3,
                                   "compatibility_date": "2024-01-01", "compatibility_flags": [], "fail_open": True,
                                   "usage_model": "standard"}


class Sites(WorkersBeta, Zones):
    dns_records: dict[str, dict[str, Any]]  # id -> record as answered
    dns_record_zone: dict[str, str]  # record id -> its zone's id
    worker_routes: dict[str, dict[str, Any]]  # id -> {id, pattern, script, zone_id}
    pages_projects: dict[str, dict[str, Any]]  # name -> project as answered
    pages_domains: dict[str, dict[str, dict[str, Any]]]  # project name -> domain name -> domain

    def _init_sites(self) -> None:
        self.dns_records = {}
        self.dns_record_zone = {}
        self.worker_routes = {}
        self.pages_projects = {}
        self.pages_domains = {}

    # --- DNS records ------------------------------------------------------------------------------

    def create_dns_record(self, req: Request) -> Response:
        zone = self._zone(req)
        body = req.json() or {}
        name, kind = str(body.get("name", "")).lower().rstrip("."), body.get("type")
        if name != zone.name and not name.endswith("." + zone.name):
            return 400, error(10000, f"{name} is not in zone {zone.name}")
        with self.lock:
            clash = [r for r in self._records(zone.zone_id) if r["name"] == name
                     and r["type"] in _ADDRESS_TYPES and kind in _ADDRESS_TYPES and "CNAME" in (r["type"], kind)]
            if clash:
                return 400, error(81053, "An A, AAAA, or CNAME record with that host already exists.")
            stamp = self.clock.stamp()
            # The fields of the document's record (dns-records_base and the type's own).
            record = {"id": uuid.uuid4().hex, "name": name, "type": kind, "content": body.get("content"),
                      "proxied": bool(body.get("proxied", False)), "proxiable": True, "ttl": body.get("ttl", 1),
                      "tags": [], "meta": {}, "created_on": stamp, "modified_on": stamp,
                      **({"comment": body["comment"]} if isinstance(body.get("comment"), str) else {})}
            self.dns_records[record["id"]] = record
            self.dns_record_zone[record["id"]] = zone.zone_id
        return 200, ok(record)

    def list_dns_records(self, req: Request) -> Response:
        zone = self._zone(req)
        unmodelled = sorted(set(req.query) - {"name", "type", "page", "per_page"})
        if unmodelled:
            return 400, error(10000, f"the double does not model {', '.join(unmodelled)}")
        found = [r for r in self._records(zone.zone_id)
                 if r["name"] == req.arg("name", r["name"]) and r["type"] == req.arg("type", r["type"])]
        page, per_page = int(req.arg("page", "1")), int(req.arg("per_page", "100"))
        items = found[(page - 1) * per_page: page * per_page]
        return 200, ok(items, {"page": page, "per_page": per_page, "count": len(items), "total_count": len(found)})

    def delete_dns_record(self, req: Request) -> Response:
        zone = self._zone(req)
        with self.lock:
            record = self.dns_records.get(req.params["record"])
            if record is None or self.dns_record_zone[record["id"]] != zone.zone_id:
                return 404, error(10000, "record not found")
            del self.dns_records[record["id"]]
            del self.dns_record_zone[record["id"]]
        return 200, ok({"id": record["id"]})

    def _records(self, zone_id: str) -> list[dict[str, Any]]:
        return [r for key, r in self.dns_records.items() if self.dns_record_zone[key] == zone_id]

    # --- Workers routes ---------------------------------------------------------------------------

    def create_worker_route(self, req: Request) -> Response:
        zone = self._zone(req)
        body = req.json() or {}
        pattern, script = str(body.get("pattern", "")), body.get("script")
        host = pattern.split("/", 1)[0].lstrip("*.")
        if host != zone.name and not host.endswith("." + zone.name):
            return 400, error(10000, f"route pattern {pattern} is not on zone {zone.name}")
        with self.lock:
            if script is not None and script not in self.scripts:
                return 400, error(10000, f"no Worker named {script} in this account")
            if any(r["zone_id"] == zone.zone_id and r["pattern"] == pattern for r in self.worker_routes.values()):
                return 409, error(10000, f"a route with pattern {pattern} already exists")
            route = {"id": uuid.uuid4().hex, "pattern": pattern, "script": script, "zone_id": zone.zone_id}
            self.worker_routes[route["id"]] = route
        return 200, ok(self._route_object(route))

    @staticmethod
    def _route_object(route: dict[str, Any]) -> dict[str, Any]:
        # A route without a Worker has no `script` (the document's workers_script_name is not nullable).
        return {k: route[k] for k in ("id", "pattern", "script") if route[k] is not None}

    def list_worker_routes(self, req: Request) -> Response:
        zone = self._zone(req)
        return 200, ok([self._route_object(r) for r in self.worker_routes.values() if r["zone_id"] == zone.zone_id])

    def delete_worker_route(self, req: Request) -> Response:
        zone = self._zone(req)
        with self.lock:
            route = self.worker_routes.get(req.params["route"])
            if route is None or route["zone_id"] != zone.zone_id:
                return 404, error(10000, "route not found")
            del self.worker_routes[route["id"]]
        return 200, ok({"id": route["id"]})

    # --- Pages projects and domains ---------------------------------------------------------------

    def _project(self, req: Request) -> dict[str, Any]:
        project = self.pages_projects.get(req.params["project"])
        if project is None:
            raise Refusal(404, error(10000, "project not found"))
        return project

    def create_pages_project(self, req: Request) -> Response:
        body = req.json() or {}
        name = body.get("name")
        # The document's pages_project_name (the path parameter every later call names it by).
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            return 400, error(10000, "a project name is lowercase letters, digits and dashes")
        with self.lock:
            if name in self.pages_projects:
                return 409, error(_PAGES_CONFLICT, f"a project named {name} already exists")
            # Every field the SDK's `Project` requires (cloudflare 5.9.0 types/pages/project.py), the
            # deployment configs as given over the API's defaults for what was left out.
            given = body.get("deployment_configs") or {}
            configs = {env: {**_DEFAULT_CONFIG, **(given.get(env) or {})} for env in ("preview", "production")}
            # `domains` lists the project's own pages.dev hostname beside its custom domains (Cloudflare's
            # wrangler fixtures: workers-sdk packages/wrangler/src/__tests__/pages/project-list.test.ts,
            # `subdomain: "cats.pages.dev", domains: ["cats.pages.dev", "kitten.com"]`).
            project = {"id": uuid.uuid4().hex, "name": name, "subdomain": f"{name}.pages.dev",
                       "domains": [f"{name}.pages.dev"],
                       "created_on": self.clock.stamp(), "production_branch": body.get("production_branch") or "main",
                       "deployment_configs": configs, "framework": "", "framework_version": "",
                       "preview_script_name": "", "production_script_name": ""}
            self.pages_projects[name] = project
            self.pages_domains[name] = {}
        return 200, ok(project)

    def get_pages_project(self, req: Request) -> Response:
        return 200, ok(self._project(req))

    def list_pages_projects(self, req: Request) -> Response:
        everything = list(self.pages_projects.values())
        return 200, ok(everything, {"page": 1, "per_page": len(everything), "count": len(everything),
                                    "total_count": len(everything)})

    def delete_pages_project(self, req: Request) -> Response:
        with self.lock:
            project = self._project(req)
            if self.pages_domains.get(project["name"]):
                return 409, error(_PAGES_CONFLICT, "the project still has custom domains")
            del self.pages_projects[project["name"]]
            self.pages_domains.pop(project["name"], None)
        return 200, ok(None)

    def create_pages_domain(self, req: Request) -> Response:
        with self.lock:
            project = self._project(req)
            name = str((req.json() or {}).get("name", "")).lower()
            domains = self.pages_domains[project["name"]]
            if not name or name in domains:
                return 409, error(_PAGES_CONFLICT, f"domain {name!r} is already on the project or empty")
            # The fields the SDK's DomainCreateResponse requires (cloudflare 5.9.0 types/pages/projects/
            # domain_create_response.py); a new domain is pending until its validation passes.
            domain_id = uuid.uuid4().hex
            domain = {"id": domain_id, "domain_id": domain_id, "name": name, "status": "pending",
                      "created_on": self.clock.stamp(), "certificate_authority": "google", "zone_tag": "",
                      "validation_data": {"method": "http", "status": "pending"},
                      "verification_data": {"status": "pending"}}
            domains[name] = domain
            project["domains"] = [project["subdomain"], *sorted(domains)]
        return 200, ok(domain)

    def delete_pages_domain(self, req: Request) -> Response:
        with self.lock:
            project = self._project(req)
            domains = self.pages_domains[project["name"]]
            if req.params["domain"] not in domains:
                return 404, error(10000, "domain not found")
            del domains[req.params["domain"]]
            project["domains"] = [project["subdomain"], *sorted(domains)]
        return 200, ok(None)


ROUTES = (
    Route("GET", "/zones/{zone}/dns_records", Sites.list_dns_records),
    Route("POST", "/zones/{zone}/dns_records", Sites.create_dns_record),
    Route("DELETE", "/zones/{zone}/dns_records/{record}", Sites.delete_dns_record),
    Route("GET", "/zones/{zone}/workers/routes", Sites.list_worker_routes),
    Route("POST", "/zones/{zone}/workers/routes", Sites.create_worker_route),
    Route("DELETE", "/zones/{zone}/workers/routes/{route}", Sites.delete_worker_route),
    Route("GET", "/accounts/{account}/pages/projects", Sites.list_pages_projects),
    Route("POST", "/accounts/{account}/pages/projects", Sites.create_pages_project),
    Route("GET", "/accounts/{account}/pages/projects/{project}", Sites.get_pages_project),
    Route("DELETE", "/accounts/{account}/pages/projects/{project}", Sites.delete_pages_project),
    Route("POST", "/accounts/{account}/pages/projects/{project}/domains", Sites.create_pages_domain),
    Route("DELETE", "/accounts/{account}/pages/projects/{project}/domains/{domain}", Sites.delete_pages_domain),
)
