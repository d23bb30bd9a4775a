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
