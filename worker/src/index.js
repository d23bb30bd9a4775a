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
// (infra/edge.py): the per-tenant rate-limit binding TENANT_RATE_LIMITER first (a flood costs no
// Siteverify call), then the Turnstile token checked with Siteverify and the widget's secret
// TURNSTILE_SECRET_KEY (on a stack with booking:saas, a SaaS salon's hostname, one not in
// SITE_HOSTNAMES, is verified with the SaaS salons' widget's TURNSTILE_SAAS_SECRET_KEY): 429 past
// the limit, 403 without a token or with one Siteverify rejects, 201 with the booking otherwise. Paystack's webhook (/api/payments/webhook) is never limited or
// challenged: Paystack's servers cannot solve a challenge, and its HMAC signature proves it.

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

// The public write endpoints (booking_shared/edge.py keeps the same list for the edge rules).
export const PUBLIC_WRITE_ENDPOINTS = {
  login: "/api/auth/login",
  bookings: "/api/bookings",
  messages: "/api/messages",
  payments: "/api/payments/initialize",
};
export const SITEVERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

// Per tenant (the hostname), endpoint and client: one salon's flood never uses up another's limit.
export async function withinLimit(env, request, endpoint) {
  if (!env.TENANT_RATE_LIMITER) return true; // not bound (local development): the edge rules still apply
  const host = new URL(request.url).hostname;
  const client = request.headers.get("cf-connecting-ip") ?? "unknown";
  const { success } = await env.TENANT_RATE_LIMITER.limit({ key: `${host}|${endpoint}|${client}` });
  return success;
}

// The hostnames the main widget covers (SITE_HOSTNAMES, a JSON list, bound with booking:saas);
// as Turnstile reads a widget's domains, a listed hostname covers its subdomains too.
export function onMainWidget(env, hostname) {
  if (!env.SITE_HOSTNAMES) throw new Error("SITE_HOSTNAMES binding is missing");
  let listed;
  try {
    listed = JSON.parse(env.SITE_HOSTNAMES);
  } catch {
    listed = null;
  }
  if (!Array.isArray(listed)) throw new Error("SITE_HOSTNAMES binding is not a JSON list of hostnames");
  const host = hostname.toLowerCase().replace(/\.$/, "");
  return listed.some((entry) => {
    const domain = String(entry).toLowerCase().replace(/\.$/, "");
    return host === domain || host.endsWith("." + domain);
  });
}

// Which widget's secret verifies a token issued on `hostname`: the SaaS salons' widget (whose
// domains `bookingctl tenants` keeps) on a hostname the main widget does not cover, when bound;
// the main widget's otherwise.
export function turnstileSecret(env, hostname) {
  // Bound together (infra/edge.py); the SaaS secret without SITE_HOSTNAMES throws (503), as a
  // missing secret does, rather than verifying the main domain with the wrong widget's secret.
  if (env.TURNSTILE_SAAS_SECRET_KEY && !onMainWidget(env, hostname)) {
    return env.TURNSTILE_SAAS_SECRET_KEY;
  }
  if (!env.TURNSTILE_SECRET_KEY) throw new Error("TURNSTILE_SECRET_KEY binding is missing");
  return env.TURNSTILE_SECRET_KEY;
}

// Siteverify: the token must be genuine, unused, and issued for this hostname.
export async function turnstileVerified(env, request, token) {
  if (!token || typeof token !== "string" || token.length > 2048) return false;
  const hostname = new URL(request.url).hostname;
  const form = new FormData();
  form.append("secret", turnstileSecret(env, hostname));
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
export function recordRequest(env, status, milliseconds) {
  if (!env.REQUESTS) return; // not bound (local development); policy worker-request-analytics requires it
  env.REQUESTS.writeDataPoint({
    indexes: [env.CF_VERSION_METADATA?.id ?? "unknown"],
    doubles: [status, milliseconds],
  });
}

export default {
  async fetch(request, env) {
    const started = Date.now();
    let response;
    try {
      response = await route(request, env);
    } catch (err) {
      // Counted as a 500 before the runtime reports the exception (a 1101 error page).
      recordRequest(env, 500, Date.now() - started);
      throw err;
    }
    recordRequest(env, response.status, Date.now() - started);
    return response;
  },
};

async function route(request, env) {
  const url = new URL(request.url);
  if (url.pathname === PUBLIC_WRITE_ENDPOINTS.bookings && request.method === "POST") {
    return createBooking(request, env);
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
export function toSite(request, env) {
  if (!env.PAGES_ORIGIN) return fetch(request);
  const url = new URL(request.url);
  const target = new URL(url.pathname + url.search, `https://${env.PAGES_ORIGIN}`);
  const headers = new Headers(request.headers);
  headers.set("x-forwarded-host", url.hostname);
  return fetch(new Request(target, { method: request.method, headers, body: request.body, redirect: "manual" }));
}
