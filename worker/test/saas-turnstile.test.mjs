// On a stack with booking:saas the Worker holds two Turnstile secrets: the main widget's
// (booking:domain and booking:tenants, listed in SITE_HOSTNAMES) and the SaaS salons' widget's,
// whose domains `bookingctl tenants` keeps. Siteverify is mocked (no network) and accepts a token
// only with the secret of the widget that issued it, for the hostname it was issued on.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import worker, { turnstileSecret } from "../src/index.js";
// Turnstile's published Siteverify endpoint (developers.cloudflare.com/turnstile/get-started/server-side-validation/).
const SITEVERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

const MAIN = "www.instylehairboutique.co.za";
const TENANT = "book.glamoursalon.co.za"; // booking:tenants (per-zone path): the main widget
const SALON = "www.fadekings.co.za"; // a SaaS salon: a custom hostname, on the SaaS widget
const SECRETS = { main: "main-widget-secret", saas: "saas-widget-secret" };
// Which widget issued a token, and on which hostname.
const TOKENS = {
  "main-token-main": { secret: SECRETS.main, hostname: MAIN },
  "main-token-tenant": { secret: SECRETS.main, hostname: TENANT },
  "saas-token-salon": { secret: SECRETS.saas, hostname: SALON },
  "saas-token-other-salon": { secret: SECRETS.saas, hostname: "www.othersalon.co.za" },
};
let calls;
let realFetch;

beforeEach(() => {
  calls = { siteverify: [], inserts: [] };
  realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    assert.equal(String(url), SITEVERIFY_URL, "the Worker may only call Siteverify here");
    const form = init.body;
    calls.siteverify.push({ secret: form.get("secret"), response: form.get("response") });
    const issued = TOKENS[form.get("response")];
    const success = issued !== undefined && issued.secret === form.get("secret");
    return new Response(JSON.stringify(success ? { success, hostname: issued.hostname }
                                               : { success, "error-codes": ["invalid-input-response"] }),
                        { status: 200, headers: { "content-type": "application/json" } });
  };
});
afterEach(() => { globalThis.fetch = realFetch; });

function env(overrides = {}) {
  return {
    ENVIRONMENT: "production",
    TURNSTILE_SECRET_KEY: SECRETS.main,
    TURNSTILE_SAAS_SECRET_KEY: SECRETS.saas,
    SITE_HOSTNAMES: JSON.stringify([TENANT, MAIN]),
    TENANT_RATE_LIMITER: { limit: async () => ({ success: true }) },
    DB: {
      prepare: (sql) => ({
        bind: (...args) => ({
          run: async () => { calls.inserts.push({ sql, args }); return { meta: { changes: 1 } }; },
          // The salon's tenant row, onboarded before there were several SaaS widgets: the first.
          first: async () => ({ turnstile_widget: null }),
        }),
      }),
    },
    ...overrides,
  };
}

function book(host, token) {
  return new Request(`https://${host}/api/bookings`, {
    method: "POST",
    headers: { "content-type": "application/json", "cf-turnstile-response": token },
    body: JSON.stringify({ serviceId: "s1", userId: "u1", startsAt: "2026-12-01 10:00:00" }),
  });
}

test("a booking on a SaaS salon's hostname is verified with the SaaS widget's secret and is 201", async () => {
  const res = await worker.fetch(book(SALON, "saas-token-salon"), env());
  assert.equal(res.status, 201);
  assert.deepEqual(calls.siteverify.map((c) => c.secret), [SECRETS.saas]);
  assert.equal(calls.inserts[0].args.at(-1), SALON);
});

test("a booking on the main domain is verified with the main widget's secret and is 201", async () => {
  const res = await worker.fetch(book(MAIN, "main-token-main"), env());
  assert.equal(res.status, 201);
  assert.deepEqual(calls.siteverify.map((c) => c.secret), [SECRETS.main]);
});

test("a booking on a booking:tenants hostname is verified with the main widget's secret", async () => {
  const res = await worker.fetch(book(TENANT, "main-token-tenant"), env());
  assert.equal(res.status, 201);
  assert.deepEqual(calls.siteverify.map((c) => c.secret), [SECRETS.main]);
});

test("a subdomain of a listed hostname belongs to the main widget, as Turnstile reads its domains", async () => {
  assert.equal(await turnstileSecret(env(), `shop.${MAIN}`), SECRETS.main);
  assert.equal(await turnstileSecret(env(), MAIN.toUpperCase()), SECRETS.main);
  // A parent or a sibling of a listed hostname is not covered by it: a SaaS salon's, then.
  assert.equal(await turnstileSecret(env(), "instylehairboutique.co.za"), SECRETS.saas);
  assert.equal(await turnstileSecret(env(), `evil${MAIN}`), SECRETS.saas);
});

test("a main widget's token on a SaaS salon's hostname is 403", async () => {
  const res = await worker.fetch(book(SALON, "main-token-main"), env());
  assert.equal(res.status, 403);
  assert.equal(calls.inserts.length, 0);
});

test("a SaaS token issued on another salon's hostname is 403: Siteverify's hostname is still checked", async () => {
  const res = await worker.fetch(book(SALON, "saas-token-other-salon"), env());
  assert.equal(res.status, 403);
  assert.deepEqual(calls.siteverify.map((c) => c.secret), [SECRETS.saas]);
  assert.equal(calls.inserts.length, 0);
});

test("without the SaaS binding (no booking:saas) every hostname uses the main widget's secret", async () => {
  const res = await worker.fetch(book(SALON, "saas-token-salon"),
                                 env({ TURNSTILE_SAAS_SECRET_KEY: undefined, SITE_HOSTNAMES: undefined }));
  assert.equal(res.status, 403);
  assert.deepEqual(calls.siteverify.map((c) => c.secret), [SECRETS.main]);
});

test("the SaaS secret without SITE_HOSTNAMES is a 503, not a guess at the widget", async () => {
  const res = await worker.fetch(book(MAIN, "main-token-main"), env({ SITE_HOSTNAMES: undefined }));
  assert.equal(res.status, 503);
  assert.match((await res.json()).detail, /SITE_HOSTNAMES/);
  assert.equal(calls.siteverify.length, 0);
});
