// Pages outside /api/: passed through on hostnames with their own origin, fetched from the Pages
// project on the Cloudflare for SaaS path (PAGES_ORIGIN bound), where the fallback origin never answers.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import worker from "../src/index.js";

const realFetch = globalThis.fetch;
let seen = [];
globalThis.fetch = async (input) => {
  seen.push(input instanceof Request ? input : new Request(input));
  return new Response("<html>booking UI</html>", { status: 200 });
};
afterEach(() => { seen = []; });
process.on("exit", () => { globalThis.fetch = realFetch; });

test("a salon's custom hostname gets its page from the Pages project, naming the salon", async () => {
  const env = { PAGES_ORIGIN: "appointmentbooking.pages.dev" };
  const res = await worker.fetch(new Request("https://book.glamoursalon.co.za/book/glamour?day=mon",
    { headers: { cookie: "s=1" } }), env);
  assert.equal(res.status, 200);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, "https://appointmentbooking.pages.dev/book/glamour?day=mon");
  assert.equal(seen[0].headers.get("x-forwarded-host"), "book.glamoursalon.co.za");
  assert.equal(seen[0].headers.get("cookie"), "s=1");
});

test("without PAGES_ORIGIN the request goes on to the hostname's own origin unchanged", async () => {
  await worker.fetch(new Request("https://www.instylehairboutique.co.za/book/instyle"), {});
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, "https://www.instylehairboutique.co.za/book/instyle");
  assert.equal(seen[0].headers.get("x-forwarded-host"), null);
});

test("API paths are never sent to the Pages project", async () => {
  const res = await worker.fetch(new Request("https://book.glamoursalon.co.za/api/nope"),
    { PAGES_ORIGIN: "appointmentbooking.pages.dev" });
  assert.equal(res.status, 404);
  assert.equal(seen.length, 0);
});

// Under plain `wrangler dev` (no --local-upstream, no PAGES_ORIGIN) the hostname's "own origin" is
// the Worker itself: fetch(request) called it again and again until workerd ran out of file
// descriptors (shared/reviews/2026-12-04-real-runtime.md, R1).
test("a Worker with no origin but itself answers 502 naming the setting after one hop, not a loop", async () => {
  let calls = 0;
  globalThis.fetch = async (input) => {
    calls += 1;
    if (calls > 5) throw new Error("fetch loop");
    return worker.fetch(input instanceof Request ? input : new Request(input), {});
  };
  try {
    const res = await worker.fetch(new Request("http://127.0.0.1:8787/book/instyle"), {});
    assert.equal(res.status, 502);
    assert.equal(calls, 1);
    const body = await res.json();
    assert.match(body.error, /PAGES_ORIGIN/);
    assert.match(body.error, /--local-upstream/);
  } finally {
    globalThis.fetch = async (input) => {
      seen.push(input instanceof Request ? input : new Request(input));
      return new Response("<html>booking UI</html>", { status: 200 });
    };
  }
});

test("a request that reaches the Worker from itself is never fetched again", async () => {
  const res = await worker.fetch(new Request("https://www.instylehairboutique.co.za/",
    { headers: { "x-booking-worker-hop": "1" } }), {});
  assert.equal(res.status, 502);
  assert.equal(seen.length, 0);
});

test("an origin that does not answer is a 502 naming the origin and the setting, not an exception", async () => {
  const failing = globalThis.fetch;
  globalThis.fetch = async () => { throw new TypeError("fetch failed: connection refused"); };
  try {
    const res = await worker.fetch(new Request("https://book.glamoursalon.co.za/"),
      { PAGES_ORIGIN: "appointmentbooking.pages.dev" });
    assert.equal(res.status, 502);
    const body = await res.json();
    assert.match(body.error, /appointmentbooking\.pages\.dev/);
    assert.match(body.error, /PAGES_ORIGIN/);
  } finally {
    globalThis.fetch = failing;
  }
});
