// Reference API Worker for the appointment-booking platform.
//
// It implements the health contract the operations check after every deploy:
//   GET /api/health -> 200 {"status":"ok", "version", "environment", "database":{"status":"ok","result":1}}
//                   -> 503 {"status":"error", ..., "database":{"status":"error","error":"..."}}
// when the D1 binding `DB` cannot answer `SELECT 1`. Everything outside /api/ is passed through
// to the origin (the Pages project behind the proxied DNS record), so the booking UI keeps working
// while the route `<domain>/*` sends every request through this Worker first.

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

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/api/health") {
      if (request.method !== "GET" && request.method !== "HEAD") {
        return json({ error: "method not allowed" }, 405);
      }
      return health(env);
    }
    if (url.pathname.startsWith("/api/")) {
      return json({ error: "not found", path: url.pathname }, 404);
    }
    return fetch(request);
  },
};
