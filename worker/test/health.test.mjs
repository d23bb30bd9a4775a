// Runs the reference Worker's fetch handler in Node (which has the same Request/Response
// globals as the Workers runtime) against D1 stand-ins that succeed and fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import worker from "../src/index.js";

const okDb = { prepare: (sql) => ({ first: async () => (sql.includes("SELECT 1") ? { result: 1 } : null) }) };
const brokenDb = { prepare: () => ({ first: async () => { throw new Error("D1_ERROR: database unavailable"); } }) };
const env = (db) => ({ DB: db, ENVIRONMENT: "staging", CF_VERSION_METADATA: { id: "v-123" } });
const get = (path) => new Request(`https://staging.example.co.za${path}`);

test("health is 200 with version, environment and SELECT 1 result when D1 answers", async () => {
  const res = await worker.fetch(get("/api/health"), env(okDb));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.status, "ok");
  assert.equal(body.version, "v-123");
  assert.equal(body.environment, "staging");
  assert.deepEqual(body.database, { status: "ok", result: 1 });
});

test("health is 503 and names the database error when D1 fails", async () => {
  const res = await worker.fetch(get("/api/health"), env(brokenDb));
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.status, "error");
  assert.match(body.database.error, /database unavailable/);
});

test("health is 503 when the DB binding is missing", async () => {
  const res = await worker.fetch(get("/api/health"), { ENVIRONMENT: "production" });
  assert.equal(res.status, 503);
  assert.equal((await res.json()).version, "unknown");
});

test("unknown API paths are JSON 404s, not passed to the origin", async () => {
  const res = await worker.fetch(get("/api/nope"), env(okDb));
  assert.equal(res.status, 404);
});
