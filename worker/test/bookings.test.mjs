// Booking creation behind the Turnstile check and the per-tenant rate-limit binding, with
// Siteverify mocked (no network): 403 without or with a bad token, 201 with a good one.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import worker from "../src/index.js";
// Turnstile's published Siteverify endpoint (developers.cloudflare.com/turnstile/get-started/server-side-validation/).
const SITEVERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

const GOOD = "good-token";
const HOST = "www.instylehairboutique.co.za";
let calls;
let realFetch;

beforeEach(() => {
  calls = { siteverify: [], limiter: [], inserts: [] };
  realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    assert.equal(String(url), SITEVERIFY_URL, "the Worker may only call Siteverify here");
    const form = init.body;
    calls.siteverify.push({ secret: form.get("secret"), response: form.get("response"), ip: form.get("remoteip") });
    const success = form.get("secret") === "turnstile-secret" && form.get("response") === GOOD;
    return new Response(JSON.stringify(success ? { success, hostname: HOST } : { success, "error-codes": ["invalid-input-response"] }),
                        { status: 200, headers: { "content-type": "application/json" } });
  };
});
afterEach(() => { globalThis.fetch = realFetch; });

function env({ allow = true } = {}) {
  return {
    ENVIRONMENT: "production",
    TURNSTILE_SECRET_KEY: "turnstile-secret",
    TENANT_RATE_LIMITER: { limit: async ({ key }) => { calls.limiter.push(key); return { success: allow }; } },
    DB: {
      prepare: (sql) => ({
        bind: (...args) => ({ run: async () => { calls.inserts.push({ sql, args }); return { meta: { changes: 1 } }; } }),
      }),
    },
  };
}

function book(headers = {}, body = { serviceId: "sA1", userId: "uA2", startsAt: "2026-12-01 10:00:00" }) {
  return new Request(`https://${HOST}/api/bookings`, {
    method: "POST",
    headers: { "content-type": "application/json", "cf-connecting-ip": "198.51.100.7", ...headers },
    body: JSON.stringify(body),
  });
}

test("booking creation without a Turnstile token is 403 and books nothing", async () => {
  const res = await worker.fetch(book(), env());
  assert.equal(res.status, 403);
  assert.equal(calls.inserts.length, 0);
  assert.equal(calls.siteverify.length, 0);
});

test("booking creation with a token Siteverify rejects is 403 and books nothing", async () => {
  const res = await worker.fetch(book({ "cf-turnstile-response": "forged-token" }), env());
  assert.equal(res.status, 403);
  assert.deepEqual(calls.siteverify, [{ secret: "turnstile-secret", response: "forged-token", ip: "198.51.100.7" }]);
  assert.equal(calls.inserts.length, 0);
});

test("booking creation with a good token is 201 and books for the hostname's salon", async () => {
  const res = await worker.fetch(book({ "cf-turnstile-response": GOOD }), env());
  assert.equal(res.status, 201);
  const body = await res.json();
  assert.equal(body.status, "booked");
  assert.equal(calls.inserts.length, 1);
  assert.deepEqual(calls.inserts[0].args.slice(1), ["sA1", "uA2", "2026-12-01 10:00:00", HOST]);
});

test("the token may also come in the JSON body", async () => {
  const res = await worker.fetch(book({}, { serviceId: "sA1", userId: "uA2", startsAt: "2026-12-01", turnstileToken: GOOD }), env());
  assert.equal(res.status, 201);
});

test("the rate-limit binding is keyed per tenant hostname, endpoint and client, and 429s before Siteverify", async () => {
  const res = await worker.fetch(book({ "cf-turnstile-response": GOOD }), env({ allow: false }));
  assert.equal(res.status, 429);
  assert.deepEqual(calls.limiter, [`${HOST}|bookings|198.51.100.7`]);
  assert.equal(calls.siteverify.length, 0);
  assert.equal(calls.inserts.length, 0);
});

test("a token issued for another hostname is refused", async () => {
  globalThis.fetch = async () => new Response(JSON.stringify({ success: true, hostname: "evil.example.com" }));
  const res = await worker.fetch(book({ "cf-turnstile-response": GOOD }), env());
  assert.equal(res.status, 403);
});

test("Paystack's webhook meets neither the rate limiter nor Siteverify", async () => {
  const req = new Request(`https://${HOST}/api/payments/webhook`, { method: "POST", body: "{}" });
  await worker.fetch(req, env({ allow: false }));
  assert.equal(calls.limiter.length, 0);
  assert.equal(calls.siteverify.length, 0);
});

// The Worker's statement run against the repository's real schema (migrations/), in SQLite through
// python3, with two salons: InStyle on HOST and Glow on glow.co.za, each with its own service.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const MIGRATIONS = fileURLToPath(new URL("../../migrations/", import.meta.url));
const SQLITE = `
import glob, json, sqlite3, sys
job = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
for path in sorted(glob.glob(job["migrations"] + "*.sql")):
    db.executescript(open(path).read())
db.executescript("""
INSERT INTO tenants (id, slug, name, hostname) VALUES ('tA', 'instyle', 'InStyle', '${HOST}'),
  ('tB', 'glow', 'Glow', 'glow.co.za');
INSERT INTO users (id, tenant_id, email, name) VALUES ('uA2', 'tA', 'a@b.co.za', 'A');
INSERT INTO services (id, tenant_id, name, duration_minutes) VALUES ('sA1', 'tA', 'Cut', 30), ('sB1', 'tB', 'Braids', 240);
""")
changes = db.execute(job["sql"], job["args"]).rowcount
rows = db.execute("SELECT tenant_id, service_id FROM appointments").fetchall()
print(json.dumps({"changes": changes, "rows": rows}))
`;

function sqliteEnv(result) {
  return {
    ...env(),
    DB: {
      prepare: (sql) => ({
        bind: (...args) => ({
          run: async () => {
            const out = spawnSync("python3", ["-c", SQLITE], {
              input: JSON.stringify({ migrations: MIGRATIONS, sql, args }), encoding: "utf8" });
            assert.equal(out.status, 0, out.stderr);
            Object.assign(result, JSON.parse(out.stdout));
            return { meta: { changes: result.changes } };
          },
        }),
      }),
    },
  };
}

test("a booking on a salon's hostname for another salon's service is refused and books nothing", async () => {
  const result = {};
  const res = await worker.fetch(book({ "cf-turnstile-response": GOOD },
    { serviceId: "sB1", userId: "uA2", startsAt: "2026-12-01 10:00:00" }), sqliteEnv(result));
  assert.equal(res.status, 404);
  assert.match((await res.json()).error, /sB1/);
  assert.deepEqual(result.rows, []);
});

test("a booking for the salon's own service is written for the hostname's salon", async () => {
  const result = {};
  const res = await worker.fetch(book({ "cf-turnstile-response": GOOD },
    { serviceId: "sA1", userId: "uA2", startsAt: "2026-12-01 10:00:00" }), sqliteEnv(result));
  assert.equal(res.status, 201);
  assert.deepEqual(result.rows, [["tA", "sA1"]]);
});
