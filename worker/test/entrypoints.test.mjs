// workerd takes every named export of a Worker's main module as an entrypoint and refuses to start
// when one is not a function or handler object ("Incorrect type for map entry 'SITEKEY_PATH'",
// cloudflare/workers-sdk#10626): `wrangler dev` could not run this Worker. The runtime tests
// (tests/runtime) start it for real; this catches a new constant export without wrangler installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as module from "../src/index.js";

test("the Worker's main module exports only functions besides its default handler", () => {
  const others = Object.entries(module).filter(([name, value]) => name !== "default" && typeof value !== "function");
  assert.deepEqual(others.map(([name]) => name), []);
  assert.equal(typeof module.default.fetch, "function");
});
