// Version affinity: the Worker hands every browser a version key in a cookie (the zone's transform
// rule copies it into Cloudflare-Workers-Version-Key), once, and keeps whatever it already has.
import { test } from "node:test";
import assert from "node:assert/strict";
import worker, { hasVersionKey } from "../src/index.js";

const okDb = { prepare: () => ({ first: async () => ({ result: 1 }) }) };
const env = { DB: okDb, ENVIRONMENT: "production", CF_VERSION_METADATA: { id: "v-1" } };
const get = (path, cookie) => new Request(`https://www.example.co.za${path}`,
  cookie === undefined ? {} : { headers: { Cookie: cookie } });
const keyOf = (res) => /booking-version-key=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];

test("a first response sets a long-lived, secure, http-only version key cookie", async () => {
  const res = await worker.fetch(get("/api/health"), env);
  const cookie = res.headers.get("set-cookie");
  assert.match(cookie, /^booking-version-key=[0-9a-f-]{36}; Path=\/; Max-Age=31536000; Secure; HttpOnly; SameSite=Lax$/);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, "ok"); // the body is the answer's, untouched
});

test("each browser gets its own key", async () => {
  const keys = new Set();
  for (let i = 0; i < 50; i++) keys.add(keyOf(await worker.fetch(get("/api/health"), env)));
  assert.equal(keys.size, 50);
});

test("a request that carries a key keeps it: no new cookie", async () => {
  const res = await worker.fetch(get("/api/health",
    "theme=dark; booking-version-key=0b5c6a0e-2f8e-4b43-9d6e-6a3f2a1c9e11"), env);
  assert.equal(res.headers.get("set-cookie"), null);
});

test("a key this Worker did not set is replaced by one it counts", async () => {
  const res = await worker.fetch(get("/api/health", "theme=dark; booking-version-key=abc-123"), env);
  assert.match(res.headers.get("set-cookie"), /^booking-version-key=[0-9a-f-]{36};/);
});

test("an empty or look-alike cookie is no key", () => {
  assert.equal(hasVersionKey(get("/", "booking-version-key=")), false);
  assert.equal(hasVersionKey(get("/", "xbooking-version-key=1")), false);
  assert.equal(hasVersionKey(get("/", "a=1;booking-version-key=k")), true);
  assert.equal(hasVersionKey(get("/")), false);
});

test("API errors get the cookie too: the key is set on whatever the browser asks first", async () => {
  const res = await worker.fetch(get("/api/nope"), env);
  assert.equal(res.status, 404);
  assert.ok(keyOf(res));
});
