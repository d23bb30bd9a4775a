// Reference API Worker for the appointment-booking platform.
//
// It implements the health contract the operations check after every deploy:
//   GET /api/health -> 200 {"status":"ok", "version", "environment", "database":{"status":"ok","result":1}}
//                   -> 503 {"status":"error", ..., "database":{"status":"error","error":"..."}}
// when the D1 binding `DB` cannot answer `SELECT 1`. Everything outside /api/ goes to the booking UI
// (the Pages project: see toSite below), so the UI keeps working while the route `<domain>/*`
// sends every request through this Worker first.
//
// Booking creation (POST /api/bookings) shows the edge protection the infrastructure declares
// (infra/edge.py, infra/turnstile.py): the per-tenant rate-limit binding TENANT_RATE_LIMITER first
// (a flood costs no Siteverify call), then the Turnstile token checked with Siteverify and the
// secret of the widget the request's hostname is on: 429 past the limit, 403 without a token or
// with one Siteverify rejects, 201 with the booking otherwise. A widget takes 15 hostnames (200 on
// Turnstile Enterprise), so there are several: site widget n lists the hostnames in SITE_HOSTNAMES[_n]
// and holds TURNSTILE_SECRET_KEY[_n]; a hostname no site widget lists is a SaaS salon's (with
// booking:saas), on the SaaS widget its tenant row names (turnstile_widget), whose secret is
// TURNSTILE_SAAS_SECRET_KEY[_n]. GET /api/turnstile/sitekey tells the booking page which sitekey
// (TURNSTILE_SITEKEYS) to render on its hostname. Paystack's webhook (/api/payments/webhook) is
// never limited or challenged: Paystack's servers cannot solve a challenge, and its HMAC signature
// proves it.

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

function json(body, status) {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

export async function health(env) {
  const base = {
    version: env.CF_VERSION_METADATA?.id ?? "unknown",
    environment: env.ENVIRONMENT ?? "unknown",
    timestamp: new Date().toISOString(),
  };
  try {
    if (!env.DB) throw new Error("D1 binding DB is missing");
    const row = await env.DB.prepare("SELECT 1 AS result").first();
    if (!row || Number(row.result) !== 1) throw new Error("SELECT 1 returned an unexpected row");
    return json({ status: "ok", ...base, database: { status: "ok", result: 1 } }, 200);
  } catch (err) {
    return json({ status: "error", ...base, database: { status: "error", error: String(err?.message ?? err) } }, 503);
  }
}

// Constants stay unexported: locally, workerd takes every named export of the main module as an
// entrypoint and refuses to start on a string one ("Incorrect type for map entry 'SITEKEY_PATH': the
// provided value is not of type 'function or ExportedHandler'", wrangler 4.164 / workerd 1.20261117;
// cloudflare/workers-sdk#10626), so `wrangler dev` could not run this Worker at all.
//
// The public write endpoints (booking_shared/edge.py keeps the same list for the edge rules).
const PUBLIC_WRITE_ENDPOINTS = {
  login: "/api/auth/login",
  bookings: "/api/bookings",
  messages: "/api/messages",
  payments: "/api/payments/initialize",
};
const SITEVERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

// Per tenant (the hostname), endpoint and client: one salon's flood never uses up another's limit.
export async function withinLimit(env, request, endpoint) {
  if (!env.TENANT_RATE_LIMITER) return true; // not bound (local development): the edge rules still apply
  const host = new URL(request.url).hostname;
  const client = request.headers.get("cf-connecting-ip") ?? "unknown";
  const { success } = await env.TENANT_RATE_LIMITER.limit({ key: `${host}|${endpoint}|${client}` });
  return success;
}

const SITEKEY_PATH = "/api/turnstile/sitekey";

// Widget n's binding: widget 0 keeps the plain name, widget n takes `_n` (booking_shared/turnstile.py).
export function indexed(name, index) {
  return index === 0 ? name : `${name}_${index}`;
}

function listed(env, binding) {
  let hostnames;
  try {
    hostnames = JSON.parse(env[binding]);
  } catch {
    hostnames = null;
  }
  if (!Array.isArray(hostnames)) throw new Error(`${binding} binding is not a JSON list of hostnames`);
  return hostnames;
}

// The site widget whose hostnames (SITE_HOSTNAMES[_n]) cover `hostname`, or -1; as Turnstile reads
// a widget's domains, a listed hostname covers its subdomains too.
export function siteWidget(env, hostname) {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  for (let index = 0; env[indexed("SITE_HOSTNAMES", index)] !== undefined; index++) {
    const covered = listed(env, indexed("SITE_HOSTNAMES", index)).some((entry) => {
      const domain = String(entry).toLowerCase().replace(/\.$/, "");
      return host === domain || host.endsWith("." + domain);
    });
    if (covered) return index;
  }
  return -1;
}

// The SaaS widget an active salon's tenant row names; a row from before there were several
// widgets names none (the first, the only one there was); null: no active salon on this hostname.
async function saasWidget(env, hostname) {
  const row = await env.DB.prepare("SELECT turnstile_widget FROM tenants WHERE hostname = ?1 AND status = 'active'")
    .bind(hostname).first();
  if (!row) return null;
  const index = Number(row.turnstile_widget ?? 0);
  return Number.isInteger(index) && index >= 0 ? index : 0;
}

// Which widget a hostname's booking form is on: { kind: "site" | "saas", index } (index null: a
// hostname with no salon, verified with the first SaaS widget, and given no sitekey).
export async function turnstileWidget(env, hostname) {
  if (env.TURNSTILE_SAAS_SECRET_KEY) {
    // Bound together (infra/turnstile.py); the SaaS secret without SITE_HOSTNAMES throws (503), as a
    // missing secret does, rather than verifying the main domain with the wrong widget's secret.
    if (!env.SITE_HOSTNAMES) throw new Error("SITE_HOSTNAMES binding is missing");
    const site = siteWidget(env, hostname);
    if (site >= 0) return { kind: "site", index: site };
    return { kind: "saas", index: await saasWidget(env, hostname) };
  }
  // No SaaS salons: every hostname is a site widget's; a stack from before SITE_HOSTNAMES has one.
  const site = env.SITE_HOSTNAMES ? siteWidget(env, hostname) : 0;
  return { kind: "site", index: site >= 0 ? site : 0, known: site >= 0 };
}

// The secret that verifies a token issued on `hostname`: its widget's, never another's.
export async function turnstileSecret(env, hostname) {
  const widget = await turnstileWidget(env, hostname);
  const binding = widget.kind === "saas" ? indexed("TURNSTILE_SAAS_SECRET_KEY", widget.index ?? 0)
                                         : indexed("TURNSTILE_SECRET_KEY", widget.index);
  if (!env[binding]) throw new Error(`${binding} binding is missing`);
  return env[binding];
}

// GET /api/turnstile/sitekey: the sitekey the booking page on this hostname renders (sitekeys are
// public: every page embeds one), so a page always renders the widget its token is verified with.
export async function sitekey(request, env) {
  if (!env.TURNSTILE_SITEKEYS) return json({ error: "TURNSTILE_SITEKEYS binding is missing" }, 503);
  const host = new URL(request.url).hostname;
  let keys;
  let widget;
  try {
    keys = JSON.parse(env.TURNSTILE_SITEKEYS);
    widget = await turnstileWidget(env, host);
  } catch (err) {
    return json({ error: "bot check unavailable", detail: String(err?.message ?? err) }, 503);
  }
  const key = widget.index === null || widget.known === false ? undefined : keys?.[widget.kind]?.[widget.index];
  if (typeof key !== "string") return json({ error: `no Turnstile widget serves ${host}` }, 404);
  return json({ sitekey: key, widget: `${widget.kind}-${widget.index}` }, 200);
}

// Siteverify: the token must be genuine, unused, and issued for this hostname.
export async function turnstileVerified(env, request, token) {
  if (!token || typeof token !== "string" || token.length > 2048) return false;
  const hostname = new URL(request.url).hostname;
  const form = new FormData();
  form.append("secret", await turnstileSecret(env, hostname));
  form.append("response", token);
  const client = request.headers.get("cf-connecting-ip");
  if (client) form.append("remoteip", client);
  const res = await fetch(SITEVERIFY_URL, { method: "POST", body: form });
  if (!res.ok) return false;
  const outcome = await res.json();
  return outcome.success === true && (!outcome.hostname || outcome.hostname === hostname);
}

export async function createBooking(request, env) {
  if (!(await withinLimit(env, request, "bookings"))) {
    return json({ error: "too many booking attempts; try again in a minute" }, 429);
  }
  let body;
  try {
    body = await request.json();
  } catch {
    return json({ error: "the body must be JSON" }, 400);
  }
  const token = request.headers.get("cf-turnstile-response") ?? body?.turnstileToken;
  let verified;
  try {
    verified = await turnstileVerified(env, request, token);
  } catch (err) {
    return json({ error: "bot check unavailable", detail: String(err?.message ?? err) }, 503);
  }
  if (!verified) return json({ error: "the bot check (Turnstile) failed or is missing" }, 403);
  const { serviceId, userId, startsAt } = body ?? {};
  if (![serviceId, userId, startsAt].every((v) => typeof v === "string" && v.length > 0 && v.length <= 100)) {
    return json({ error: "serviceId, userId and startsAt are required" }, 400);
  }
  const id = crypto.randomUUID();
  const host = new URL(request.url).hostname;
  // The tenant is the hostname's, never one the client names, and the service must be that
  // tenant's: a service id is all a client needs to book at another salon through this hostname.
  const result = await env.DB.prepare(
    "INSERT INTO appointments (id, tenant_id, service_id, user_id, starts_at) " +
      "SELECT ?1, t.id, s.id, ?3, ?4 FROM tenants t JOIN services s ON s.id = ?2 AND s.tenant_id = t.id " +
      "WHERE t.hostname = ?5",
  ).bind(id, serviceId, userId, startsAt, host).run();
  if (!result?.meta?.changes) {
    return json({ error: `no salon served on ${host} offers service ${serviceId}` }, 404);
  }
  return json({ id, status: "booked" }, 201);
}

// One data point per request in Workers Analytics Engine (binding REQUESTS, bound by
// infra/worker.py): the canary's per-version source of HTTP status and time (ops/analytics.py),
// because Cloudflare's Workers analytics count invocation statuses, not HTTP status codes (a health
// check answering 503 is a successful invocation). The index is the version id, the dataset's
// sampling key, so one version's numbers stay accurate under sampling; double1 is the HTTP status,
// double2 the milliseconds to the response. Timers in a deployed Worker advance only after I/O
// (Cloudflare's "Performance and timers"), so the time covers the waits on D1 and subrequests,
// which is what a salon waits for. writeDataPoint is not awaited: the runtime writes in the background.
//
// blob1 is the request's unit of assignment: the browser's version key (below), to which Cloudflare
// sends all of its requests to one version, or for a request without one a key of its own (such a
// request is assigned at random, alone). The canary compares the versions by units that failed,
// not requests (ops/releases/baseline.py): one browser retrying a failing page many times is one
// unit, wherever its key sends it. The key is a random UUID the Worker set; any other cookie value
// is not written (a client must not write arbitrary text into the dataset).
// The canary's own probes (pinned to this version, marked by PROBE_HEADER naming it) go under the
// index "probe:<version>": the canary's query reads index1 = '<version>' only, so its two probe
// requests a minute do not dilute a quiet canary's numbers. booking_shared/rollout.py PROBE_HEADER.
const PROBE_HEADER = "Booking-Canary-Probe";

export function recordRequest(env, status, milliseconds, unit, probe = false) {
  if (!env.REQUESTS) return; // not bound (local development); policy worker-request-analytics requires it
  const version = env.CF_VERSION_METADATA?.id ?? "unknown";
  env.REQUESTS.writeDataPoint({
    indexes: [probe ? `probe:${version}` : version],
    blobs: [unit ?? crypto.randomUUID()],
    doubles: [status, milliseconds],
  });
}

export default {
  async fetch(request, env) {
    const started = Date.now();
    const unit = versionKey(request) ?? crypto.randomUUID();
    // Only a probe naming this very version is one (a stale or forged header is counted as traffic).
    const probe = env.CF_VERSION_METADATA?.id !== undefined &&
      request.headers.get(PROBE_HEADER) === env.CF_VERSION_METADATA.id;
    let response;
    try {
      response = await route(request, env);
    } catch (err) {
      // Counted as a 500 before the runtime reports the exception (a 1101 error page).
      recordRequest(env, 500, Date.now() - started, unit, probe);
      throw err;
    }
    recordRequest(env, response.status, Date.now() - started, unit, probe);
    return withVersionKey(request, response);
  },
};

// Version affinity: during a canary Cloudflare routes each request to a version at random, so a
// booking (slots, create, pay) could meet two versions. A request carrying the
// Cloudflare-Workers-Version-Key header goes to the version its key hashes to, the same one for
// the same key (cloudflare-docs workers/versions-and-deployments/gradual-deployments/version-affinity.mdx).
// This Worker gives every browser a random key in a long-lived cookie on its first response; the
// zone's request header transform rule (infra/edge.py) copies the cookie into that header.
// booking_shared/edge.py VERSION_KEY_COOKIE names the same cookie.
const VERSION_KEY_COOKIE = "booking-version-key";
const VERSION_KEY_MAX_AGE = 60 * 60 * 24 * 365;

export function hasVersionKey(request) {
  const cookies = request.headers.get("Cookie") ?? "";
  return cookies.split(";").some((part) => part.trim().startsWith(`${VERSION_KEY_COOKIE}=`) &&
    part.trim().length > VERSION_KEY_COOKIE.length + 1);
}

// The browser's version key when it is one this Worker set (a UUID), else null.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function versionKey(request) {
  const cookies = request.headers.get("Cookie") ?? "";
  for (const part of cookies.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === VERSION_KEY_COOKIE && UUID.test(rest.join("="))) return rest.join("=");
  }
  return null;
}

export function withVersionKey(request, response) {
  // A key this Worker did not set (quoted, another case, a legacy value) pins the browser all the
  // same but is not counted as its unit (versionKey): replace it with one that is.
  if (versionKey(request) !== null) return response;
  // A response from fetch() (the Pages origin) has immutable headers: copy it before adding one.
  const keyed = new Response(response.body, response);
  keyed.headers.append("Set-Cookie", `${VERSION_KEY_COOKIE}=${crypto.randomUUID()}; Path=/; Max-Age=` +
    `${VERSION_KEY_MAX_AGE}; Secure; HttpOnly; SameSite=Lax`);
  return keyed;
}

async function route(request, env) {
  const url = new URL(request.url);
  if (url.pathname === PUBLIC_WRITE_ENDPOINTS.bookings && request.method === "POST") {
    return createBooking(request, env);
  }
  if (url.pathname === SITEKEY_PATH && request.method === "GET") {
    return sitekey(request, env);
  }
  if (url.pathname === "/api/health") {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return json({ error: "method not allowed" }, 405);
    }
    return health(env);
  }
  if (url.pathname.startsWith("/api/")) {
    return json({ error: "not found", path: url.pathname }, 404);
  }
  return toSite(request, env);
}

// Everything outside /api/ is the booking UI (the Pages project). On a hostname with its own
// proxied record (the domain, a tenant on the per-zone path) that record's origin is the Pages
// project, so the request goes on unchanged. On the Cloudflare for SaaS path a salon's custom
// hostname reaches an originless fallback record (100::) that never answers, so with
// PAGES_ORIGIN bound (`<project>.pages.dev`, only on stacks with booking:saas) the Worker fetches
// the page from the project itself, naming the salon's hostname in X-Forwarded-Host (the UI tells
// salons apart by it).
//
// Where there is no origin but the Worker itself (plain `wrangler dev` on 127.0.0.1: no route, no
// --local-upstream) fetch(request) calls this Worker again, and again, until workerd runs out of
// file descriptors. Every forwarded request carries HOP_HEADER, so one that arrives with it came
// from this Worker: it is answered 502 at once, after one hop. In production a route's subrequest
// to its own hostname goes to the origin, which ignores the header.
const HOP_HEADER = "x-booking-worker-hop";
const NO_ORIGIN = "the booking UI has no origin but this Worker itself: bind PAGES_ORIGIN (the Pages " +
  "project's <project>.pages.dev), or run `wrangler dev --local-upstream HOST:PORT` (make dev does)";

export async function toSite(request, env) {
  if (request.headers.get(HOP_HEADER)) return json({ error: NO_ORIGIN }, 502);
  const url = new URL(request.url);
  let forwarded;
  let origin;
  if (env.PAGES_ORIGIN) {
    const target = new URL(url.pathname + url.search, `https://${env.PAGES_ORIGIN}`);
    const headers = new Headers(request.headers);
    headers.set("x-forwarded-host", url.hostname);
    headers.set(HOP_HEADER, "1");
    forwarded = new Request(target, { method: request.method, headers, body: request.body, redirect: "manual" });
    origin = `PAGES_ORIGIN ${env.PAGES_ORIGIN}`;
  } else {
    forwarded = new Request(request);
    forwarded.headers.set(HOP_HEADER, "1");
    origin = `the origin of ${url.host} (PAGES_ORIGIN is not bound)`;
  }
  try {
    return await fetch(forwarded);
  } catch (err) {
    return json({ error: `${origin} did not answer: ${String(err?.message ?? err)}` }, 502);
  }
}
