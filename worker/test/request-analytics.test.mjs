// Every request writes one data point to Workers Analytics Engine: the canary's per-version HTTP
// status and time (ops/analytics.py reads index1, double1, double2).
import { test } from "node:test";
import assert from "node:assert/strict";
import worker from "../src/index.js";

const okDb = { prepare: () => ({ first: async () => ({ result: 1 }) }) };
const brokenDb = { prepare: () => ({ first: async () => { throw new Error("D1_ERROR: database unavailable"); } }) };

function dataset() {
  const points = [];
  return { points, writeDataPoint: (point) => points.push(point) };
}

const env = (db, requests) => ({ DB: db, ENVIRONMENT: "staging", CF_VERSION_METADATA: { id: "v-123" }, REQUESTS: requests });
const get = (path) => new Request(`https://staging.example.co.za${path}`);

test("a request writes one data point indexed by the version id with its HTTP status and time", async () => {
  const requests = dataset();
  const res = await worker.fetch(get("/api/health"), env(okDb, requests));
  assert.equal(res.status, 200);
  assert.equal(requests.points.length, 1);
  const [point] = requests.points;
  assert.deepEqual(point.indexes, ["v-123"]);
  assert.equal(point.doubles[0], 200);
  assert.ok(point.doubles[1] >= 0 && Number.isFinite(point.doubles[1]));
});

test("a handled error answered 503 is recorded as 503 (the invocation itself succeeded)", async () => {
  const requests = dataset();
  const res = await worker.fetch(get("/api/health"), env(brokenDb, requests));
  assert.equal(res.status, 503);
  assert.equal(requests.points[0].doubles[0], 503);
});

test("a request that throws is recorded as 500 and the exception still reaches the runtime", async () => {
  const requests = dataset();
  // A binding that fails outright (an origin that fails is answered 502 instead: see origin.test.mjs).
  const throwing = { ...env(okDb, requests),
                     TENANT_RATE_LIMITER: { limit: async () => { throw new Error("rate limiter unavailable"); } } };
  await assert.rejects(worker.fetch(new Request("https://staging.example.co.za/api/bookings",
    { method: "POST", body: "{}" }), throwing), /rate limiter unavailable/);
  assert.equal(requests.points.length, 1);
  assert.equal(requests.points[0].doubles[0], 500);
});

test("without the REQUESTS binding (local development) requests are still answered", async () => {
  const res = await worker.fetch(get("/api/nope"), env(okDb, undefined));
  assert.equal(res.status, 404);
});

test("blob1 is the browser's version key, or a key of the request's own without one", async () => {
  const requests = dataset();
  const key = "0b5c6a0e-2f8e-4b43-9d6e-6a3f2a1c9e11";
  await worker.fetch(new Request("https://staging.example.co.za/api/health",
    { headers: { Cookie: `a=b; booking-version-key=${key}` } }), env(okDb, requests));
  await worker.fetch(get("/api/health"), env(okDb, requests));
  await worker.fetch(get("/api/health"), env(okDb, requests));
  assert.equal(requests.points[0].blobs[0], key);
  const [one, two] = [requests.points[1].blobs[0], requests.points[2].blobs[0]];
  assert.match(one, /^[0-9a-f-]{36}$/);
  assert.notEqual(one, two);
});

test("a version key cookie that is not a UUID is never written to the dataset", async () => {
  const requests = dataset();
  const hostile = "x".repeat(5000) + "\"; DROP";
  await worker.fetch(new Request("https://staging.example.co.za/api/health",
    { headers: { Cookie: `booking-version-key=${hostile}` } }), env(okDb, requests));
  assert.notEqual(requests.points[0].blobs[0], hostile);
  assert.match(requests.points[0].blobs[0], /^[0-9a-f-]{36}$/);
});

test("the canary's own probe of this version is written under probe:<version>, out of the canary's query", async () => {
  const requests = dataset();
  const probe = (version) => new Request("https://staging.example.co.za/api/health",
    { headers: { "Booking-Canary-Probe": version } });
  await worker.fetch(probe("v-123"), env(okDb, requests));
  await worker.fetch(probe("v-other"), env(okDb, requests)); // another version's: this one's traffic
  await worker.fetch(get("/api/health"), env(okDb, requests));
  assert.deepEqual(requests.points.map((p) => p.indexes[0]), ["probe:v-123", "v-123", "v-123"]);
});
