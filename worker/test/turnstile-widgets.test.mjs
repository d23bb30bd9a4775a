// Turnstile at salon scale: the site hostnames are spread over several widgets (SITE_HOSTNAMES,
// SITE_HOSTNAMES_1, ... with TURNSTILE_SECRET_KEY, TURNSTILE_SECRET_KEY_1, ...) and the SaaS salons
// over several SaaS widgets (TURNSTILE_SAAS_SECRET_KEY, TURNSTILE_SAAS_SECRET_KEY_1, ...), the one a
// salon is on named by its tenant row (turnstile_widget). The Worker verifies a token with the
// secret of the widget its hostname is on, and tells the booking page which sitekey to render.
// Siteverify is mocked (no network) and accepts a token only with the secret of the widget that
// issued it, for the hostname it was issued on.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import worker, { turnstileSecret } from "../src/index.js";
// Turnstile's published Siteverify endpoint (developers.cloudflare.com/turnstile/get-started/server-side-validation/).
const SITEVERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

const MAIN = "www.instylehairboutique.co.za";
const SECOND = "book.salon-14.co.za"; // booking:tenants, on the second site widget
const ON_SAAS_1 = "www.fadekings.co.za"; // a SaaS salon whose row names SaaS widget 1
const ON_SAAS_0 = "www.oldsalon.co.za"; // onboarded before the column existed (NULL: widget 0)
const SECRETS = { site0: "site-0-secret", site1: "site-1-secret", saas0: "saas-0-secret", saas1: "saas-1-secret" };
const ROWS = { [ON_SAAS_1]: { turnstile_widget: 1 }, [ON_SAAS_0]: { turnstile_widget: null } };
const SITEKEYS = { site: ["0x4site0", "0x4site1"], saas: ["0x4saas0", "0x4saas1"] };
let calls;
let realFetch;

beforeEach(() => {
  calls = { siteverify: [], reads: [] };
  realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    assert.equal(String(url), SITEVERIFY_URL, "the Worker may only call Siteverify here");
    const form = init.body;
    calls.siteverify.push(form.get("secret"));
    const [secret, hostname] = form.get("response").split("@");
    const success = secret === form.get("secret");
    return new Response(JSON.stringify(success ? { success, hostname } : { success, "error-codes": ["invalid-input-response"] }),
                        { status: 200, headers: { "content-type": "application/json" } });
  };
});
afterEach(() => { globalThis.fetch = realFetch; });

function env(overrides = {}) {
  return {
    ENVIRONMENT: "production",
    TURNSTILE_SECRET_KEY: SECRETS.site0,
    TURNSTILE_SECRET_KEY_1: SECRETS.site1,
    SITE_HOSTNAMES: JSON.stringify([MAIN, "book.salon-1.co.za"]),
    SITE_HOSTNAMES_1: JSON.stringify([SECOND]),
    TURNSTILE_SAAS_SECRET_KEY: SECRETS.saas0,
    TURNSTILE_SAAS_SECRET_KEY_1: SECRETS.saas1,
    TURNSTILE_SITEKEYS: JSON.stringify(SITEKEYS),
    TENANT_RATE_LIMITER: { limit: async () => ({ success: true }) },
    DB: {
      prepare: (sql) => ({
        bind: (...args) => ({
          first: async () => { calls.reads.push({ sql, args }); return ROWS[args[0]] ?? null; },
          run: async () => ({ meta: { changes: 1 } }),
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

function sitekeyOf(host, e = env()) {
  return worker.fetch(new Request(`https://${host}/api/turnstile/sitekey`), e);
}

test("a hostname on the second site widget is verified with that widget's secret and is 201", async () => {
  const res = await worker.fetch(book(SECOND, `${SECRETS.site1}@${SECOND}`), env());
  assert.equal(res.status, 201);
  assert.deepEqual(calls.siteverify, [SECRETS.site1]);
  assert.equal(calls.reads.length, 0, "a site hostname needs no database read");
});

test("a token of the first site widget on a hostname of the second is 403", async () => {
  const res = await worker.fetch(book(SECOND, `${SECRETS.site0}@${SECOND}`), env());
  assert.equal(res.status, 403);
});

test("a SaaS salon is verified with the secret of the widget its tenant row names", async () => {
  assert.equal(await turnstileSecret(env(), ON_SAAS_1), SECRETS.saas1);
  assert.equal(await turnstileSecret(env(), ON_SAAS_0), SECRETS.saas0, "a row without a widget: the first");
  const res = await worker.fetch(book(ON_SAAS_1, `${SECRETS.saas1}@${ON_SAAS_1}`), env());
  assert.equal(res.status, 201);
  assert.match(calls.reads[0].sql, /SELECT turnstile_widget FROM tenants WHERE hostname = \?1 AND status = 'active'/);
});

test("a widget whose secret is not bound is a 503, not a guess at another widget", async () => {
  const res = await worker.fetch(book(ON_SAAS_1, `${SECRETS.saas1}@${ON_SAAS_1}`),
                                 env({ TURNSTILE_SAAS_SECRET_KEY_1: undefined }));
  assert.equal(res.status, 503);
  assert.match((await res.json()).detail, /TURNSTILE_SAAS_SECRET_KEY_1/);
  assert.equal(calls.siteverify.length, 0);
});

test("the booking page learns the sitekey of the widget its hostname is on", async () => {
  for (const [host, key, widget] of [[MAIN, "0x4site0", "site-0"], [SECOND, "0x4site1", "site-1"],
                                     [ON_SAAS_1, "0x4saas1", "saas-1"], [ON_SAAS_0, "0x4saas0", "saas-0"]]) {
    const res = await sitekeyOf(host);
    assert.equal(res.status, 200, host);
    assert.deepEqual(await res.json(), { sitekey: key, widget }, host);
  }
});

test("a hostname no widget and no salon has gets no sitekey (404)", async () => {
  const res = await sitekeyOf("www.nobody.co.za");
  assert.equal(res.status, 404);
});

test("without TURNSTILE_SITEKEYS the sitekey answer is a 503 naming the binding", async () => {
  const res = await sitekeyOf(MAIN, env({ TURNSTILE_SITEKEYS: undefined }));
  assert.equal(res.status, 503);
  assert.match((await res.json()).error, /TURNSTILE_SITEKEYS/);
});

test("a stack with one widget and no SaaS salons verifies every hostname with the one secret", async () => {
  const one = env({ TURNSTILE_SECRET_KEY_1: undefined, SITE_HOSTNAMES_1: undefined, TURNSTILE_SAAS_SECRET_KEY: undefined,
                    TURNSTILE_SAAS_SECRET_KEY_1: undefined, SITE_HOSTNAMES: undefined });
  assert.equal(await turnstileSecret(one, MAIN), SECRETS.site0);
  assert.equal(await turnstileSecret(one, "anything.example"), SECRETS.site0);
});
