// Tests for the browser tracking snippet (affiliates/static/affiliates/t.js).
// Run: node --test affiliates/tests/js/
// No npm packages: a tiny fake window/document/location/fetch is built per test and the
// script is evaluated in it with node:vm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import vm from "node:vm";

const SCRIPT_PATH = new URL("../../static/affiliates/t.js", import.meta.url);
const SOURCE = readFileSync(SCRIPT_PATH, "utf8");

const CLICK = "3f1c2b4a-9d8e-4f70-8a6b-5c4d3e2f1a0b";
const VISITOR = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const OLD_VISITOR = "11111111-2222-4333-8444-555555555555";

function jsonResponse(status, data) {
  return { ok: status >= 200 && status < 300, status, json: async () => data };
}

function makeInput(name) {
  return { tagName: "INPUT", name, value: "" };
}

// Builds a fresh fake browser. `fetchImpl(url, init)` defaults to a 201 with `response`.
function makeEnv({
  url = "https://shop.example.com/landing?ref=jane",
  scriptSrc = "https://acme.platform.com/t.js",
  attrs = {},
  cookie = "",
  response = { click_id: CLICK, visitor_id: VISITOR, cookie_days: 30 },
  fetchImpl = null,
  currentScript = true,
  otherScripts = [],
  readyState = "complete",
  inputs = [makeInput("ap_click_id"), makeInput("ap_visitor_id"), makeInput("email")],
  referrer = "https://blog.example.org/post",
  extra = {},
} = {}) {
  const u = new URL(url);
  const location = {
    href: u.href, search: u.search, protocol: u.protocol, origin: u.origin,
    host: u.host, hostname: u.hostname, pathname: u.pathname, hash: u.hash,
  };

  const cookieWrites = [];
  const jar = new Map();
  for (const part of cookie.split(";")) {
    const p = part.trim();
    if (p) jar.set(p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1));
  }

  const script = {
    tagName: "SCRIPT",
    src: scriptSrc,
    getAttribute: (n) => (Object.hasOwn(attrs, n) ? attrs[n] : null),
  };
  const scripts = [
    { tagName: "SCRIPT", src: "https://cdn.example.com/jquery.js", getAttribute: () => null },
    script,
    ...otherScripts,
  ];

  const listeners = {};
  const document = {
    readyState,
    referrer,
    currentScript: currentScript ? script : null,
    inputs,
    getElementsByTagName: (tag) => (tag.toLowerCase() === "script" ? scripts : []),
    querySelectorAll(selector) {
      const m = /^input\[name="([^"]+)"\]$/.exec(selector);
      if (!m) throw new Error(`unsupported selector in fake DOM: ${selector}`);
      return document.inputs.filter((el) => el.name === m[1]);
    },
    addEventListener(type, fn) {
      (listeners[type] ||= []).push(fn);
    },
  };
  Object.defineProperty(document, "cookie", {
    configurable: true,
    get: () => [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
    set(value) {
      cookieWrites.push(value);
      const first = value.split(";")[0];
      const eq = first.indexOf("=");
      const maxAge = /;\s*Max-Age=(-?\d+)/i.exec(value);
      if (maxAge && Number(maxAge[1]) <= 0) jar.delete(first.slice(0, eq));
      else jar.set(first.slice(0, eq), first.slice(eq + 1));
    },
  });

  const fetchCalls = [];
  const fetch = (reqUrl, init) => {
    // Copy out of the vm realm so deepStrictEqual compares plain objects.
    fetchCalls.push({ url: reqUrl, init: JSON.parse(JSON.stringify(init)) });
    return fetchImpl ? fetchImpl(reqUrl, init) : Promise.resolve(jsonResponse(201, response));
  };

  const sandbox = {
    document, location, fetch, URL, URLSearchParams, setTimeout, clearTimeout, console, ...extra,
  };
  sandbox.window = sandbox;
  const context = vm.createContext(sandbox);

  return {
    sandbox, document, location, cookieWrites, jar, fetchCalls, listeners,
    run() {
      vm.runInContext(SOURCE, context, { filename: "t.js" });
      return sandbox.AffiliateTracker;
    },
    input: (name) => document.inputs.find((el) => el.name === name),
  };
}

async function runAndWait(env) {
  const tracker = env.run();
  assert.ok(tracker, "window.AffiliateTracker is defined");
  await tracker.ready;
  return tracker;
}

function assertNothingStored(env, tracker) {
  assert.deepEqual(env.cookieWrites, []);
  assert.equal(tracker.clickId(), null);
  assert.equal(tracker.visitorId(), null);
  assert.equal(env.input("ap_click_id").value, "");
  assert.equal(env.input("ap_visitor_id").value, "");
}

test("?ref= registers one click, stores cookies, exposes and fills the ids", async () => {
  const env = makeEnv({
    url: "https://shop.example.com/p/shoes?color=red&ref=jane&utm_source=news&utm_medium=email&utm_term=&sub1=a1&sub3=c3#top",
    attrs: { "data-cookie-domain": ".shop.example.com" },
    response: { click_id: CLICK, visitor_id: VISITOR, cookie_days: 7 },
  });
  const tracker = await runAndWait(env);

  assert.equal(env.fetchCalls.length, 1);
  const { url, init } = env.fetchCalls[0];
  assert.equal(url, "https://acme.platform.com/api/v1/track/clicks");
  const { body, ...rest } = init;
  assert.deepEqual(rest, {
    method: "POST",
    mode: "cors",
    credentials: "omit",
    keepalive: true,
    headers: { "Content-Type": "application/json" },
  });
  assert.deepEqual(JSON.parse(body), {
    code: "jane",
    landing_url: "https://shop.example.com/p/shoes?color=red&ref=jane&utm_source=news&utm_medium=email&utm_term=&sub1=a1&sub3=c3#top",
    referrer: "https://blog.example.org/post",
    utm: { utm_source: "news", utm_medium: "email" },
    sub_ids: { sub1: "a1", sub3: "c3" },
  });
  assert.ok(!("visitor_id" in JSON.parse(body)), "no visitor_id without a cookie");

  assert.deepEqual(env.cookieWrites, [
    `ap_vid=${VISITOR}; Max-Age=604800; Path=/; Domain=.shop.example.com; SameSite=Lax; Secure`,
    `ap_click=${CLICK}; Max-Age=604800; Path=/; Domain=.shop.example.com; SameSite=Lax; Secure`,
  ]);
  assert.equal(tracker.visitorId(), VISITOR);
  assert.equal(tracker.clickId(), CLICK);
  assert.equal(env.input("ap_click_id").value, CLICK);
  assert.equal(env.input("ap_visitor_id").value, VISITOR);
  assert.equal(env.input("email").value, "", "other inputs are left alone");
});

test("http page: no Secure; no data-cookie-domain: host-only cookie", async () => {
  const env = makeEnv({ url: "http://shop.example.com/?ref=jane" });
  await runAndWait(env);
  assert.deepEqual(env.cookieWrites, [
    `ap_vid=${VISITOR}; Max-Age=2592000; Path=/; SameSite=Lax`,
    `ap_click=${CLICK}; Max-Age=2592000; Path=/; SameSite=Lax`,
  ]);
});

test("a 200 (duplicate click) is handled like a 201", async () => {
  const env = makeEnv({
    fetchImpl: async () => jsonResponse(200, { click_id: CLICK, visitor_id: VISITOR, cookie_days: 30 }),
  });
  const tracker = await runAndWait(env);
  assert.equal(env.cookieWrites.length, 2);
  assert.equal(tracker.clickId(), CLICK);
});

test("missing or bad cookie_days falls back to 30 days", async () => {
  for (const days of [undefined, 0, -1, "7; Domain=evil.com", 1.5, 99999]) {
    const env = makeEnv({ response: { click_id: CLICK, visitor_id: VISITOR, cookie_days: days } });
    await runAndWait(env);
    assert.deepEqual(env.cookieWrites, [
      `ap_vid=${VISITOR}; Max-Age=2592000; Path=/; SameSite=Lax; Secure`,
      `ap_click=${CLICK}; Max-Age=2592000; Path=/; SameSite=Lax; Secure`,
    ], `cookie_days=${days}`);
  }
});

test("?via= works", async () => {
  const env = makeEnv({ url: "https://shop.example.com/?via=bob_2-x" });
  await runAndWait(env);
  assert.equal(env.fetchCalls.length, 1);
  assert.equal(JSON.parse(env.fetchCalls[0].init.body).code, "bob_2-x");
});

test("the first configured param wins", async () => {
  const env = makeEnv({ url: "https://shop.example.com/?via=second&ref=first" });
  await runAndWait(env);
  assert.equal(JSON.parse(env.fetchCalls[0].init.body).code, "first");
});

test('custom data-params="aff" is used and ?ref= is then ignored', async () => {
  const ignored = makeEnv({ url: "https://shop.example.com/?ref=jane", attrs: { "data-params": "aff" } });
  const t1 = await runAndWait(ignored);
  assert.equal(ignored.fetchCalls.length, 0);
  assertNothingStored(ignored, t1);

  const used = makeEnv({ url: "https://shop.example.com/?ref=jane&aff=bob", attrs: { "data-params": " aff " } });
  await runAndWait(used);
  assert.equal(used.fetchCalls.length, 1);
  assert.equal(JSON.parse(used.fetchCalls[0].init.body).code, "bob");
});

test("?ac_click=<uuid>&ref=x: no POST, click cookie stored for 30 days", async () => {
  const env = makeEnv({
    url: `https://shop.example.com/?ac_click=${CLICK.toUpperCase()}&ref=x`,
    attrs: { "data-cookie-domain": "shop.example.com" },
  });
  const tracker = await runAndWait(env);
  assert.equal(env.fetchCalls.length, 0);
  assert.deepEqual(env.cookieWrites, [
    `ap_click=${CLICK}; Max-Age=2592000; Path=/; Domain=shop.example.com; SameSite=Lax; Secure`,
  ]);
  assert.equal(tracker.clickId(), CLICK);
  assert.equal(tracker.visitorId(), null);
  assert.equal(env.input("ap_click_id").value, CLICK);
  assert.equal(env.input("ap_visitor_id").value, "");
});

test("an invalid ac_click is ignored and the code is registered", async () => {
  const env = makeEnv({ url: "https://shop.example.com/?ac_click=not-a-uuid&ref=x" });
  const tracker = await runAndWait(env);
  assert.equal(env.fetchCalls.length, 1);
  assert.equal(tracker.clickId(), CLICK);
});

test("an existing ap_vid cookie is sent as visitor_id and exposed before ready", async () => {
  const env = makeEnv({ cookie: `other=1; ap_vid=${OLD_VISITOR}; x=y` });
  const tracker = env.run();
  assert.equal(tracker.visitorId(), OLD_VISITOR);
  await tracker.ready;
  assert.equal(JSON.parse(env.fetchCalls[0].init.body).visitor_id, OLD_VISITOR);
  assert.equal(tracker.visitorId(), VISITOR, "the server's answer wins");
});

test("a malformed ap_vid cookie is not sent", async () => {
  const env = makeEnv({ cookie: "ap_vid=<script>" });
  await runAndWait(env);
  assert.ok(!("visitor_id" in JSON.parse(env.fetchCalls[0].init.body)));
});

test("no code in the URL: nothing sent, stored ids still exposed and filled", async () => {
  const env = makeEnv({ url: "https://shop.example.com/checkout", cookie: `ap_vid=${OLD_VISITOR}; ap_click=${CLICK}` });
  const tracker = await runAndWait(env);
  assert.equal(env.fetchCalls.length, 0);
  assert.deepEqual(env.cookieWrites, []);
  assert.equal(tracker.clickId(), CLICK);
  assert.equal(env.input("ap_click_id").value, CLICK);
  assert.equal(env.input("ap_visitor_id").value, OLD_VISITOR);
});

for (const [label, query] of [
  ["markup", "ref=%3Cscript%3E"],
  ["raw markup", "ref=<script>"],
  ["too long", `ref=${"a".repeat(65)}`],
  ["dot", "ref=jane.doe"],
  ["blank", "ref=%20%20"],
]) {
  test(`invalid code (${label}) → no request, no cookies`, async () => {
    const env = makeEnv({ url: `https://shop.example.com/?${query}` });
    const tracker = await runAndWait(env);
    assert.equal(env.fetchCalls.length, 0);
    assertNothingStored(env, tracker);
  });
}

test("code is trimmed and 64 chars are accepted", async () => {
  const code = "a".repeat(64);
  const env = makeEnv({ url: `https://shop.example.com/?ref=%20${code}%20` });
  await runAndWait(env);
  assert.equal(JSON.parse(env.fetchCalls[0].init.body).code, code);
});

const failures = {
  "invalid click_id in response": async () => jsonResponse(201, { click_id: "x; Domain=evil", visitor_id: VISITOR, cookie_days: 30 }),
  "invalid visitor_id in response": async () => jsonResponse(201, { click_id: CLICK, visitor_id: 42, cookie_days: 30 }),
  "null JSON": async () => jsonResponse(201, null),
  "unparseable JSON": async () => ({ ok: true, status: 201, json: async () => { throw new SyntaxError("bad"); } }),
  "fetch rejecting": async () => { throw new TypeError("Failed to fetch"); },
  "fetch throwing synchronously": () => { throw new TypeError("sync"); },
  "500 response": async () => jsonResponse(500, { click_id: CLICK, visitor_id: VISITOR, cookie_days: 30 }),
  "404 response": async () => jsonResponse(404, { detail: "unknown code" }),
};
for (const [label, fetchImpl] of Object.entries(failures)) {
  test(`${label} → no cookies, no exception, ready resolves`, async () => {
    const env = makeEnv({ fetchImpl });
    let tracker;
    assert.doesNotThrow(() => { tracker = env.run(); });
    await tracker.ready; // must resolve, never reject
    assert.equal(env.fetchCalls.length, 1, "no retry");
    assertNothingStored(env, tracker);
  });
}

test("falls back to the last <script> ending in /t.js when currentScript is null", async () => {
  const env = makeEnv({
    currentScript: false,
    scriptSrc: "https://old.platform.com/t.js",
    otherScripts: [{
      tagName: "SCRIPT",
      src: "https://acme.platform.com:8443/t.js?v=2",
      getAttribute: (n) => (n === "data-params" ? "aff" : null),
    }],
    url: "https://shop.example.com/?aff=jane",
  });
  await runAndWait(env);
  assert.equal(env.fetchCalls.length, 1);
  assert.equal(env.fetchCalls[0].url, "https://acme.platform.com:8443/api/v1/track/clicks");
});

test("no script found: no request, no exception", async () => {
  const env = makeEnv({ currentScript: false, scriptSrc: "https://acme.platform.com/other.js" });
  const tracker = await runAndWait(env);
  assert.equal(env.fetchCalls.length, 0);
  assertNothingStored(env, tracker);
});

test("a cookie domain with injected attributes is ignored", async () => {
  const env = makeEnv({ url: "http://shop.example.com/?ref=jane", attrs: { "data-cookie-domain": "evil.com; Path=/x" } });
  await runAndWait(env);
  assert.deepEqual(env.cookieWrites, [
    `ap_vid=${VISITOR}; Max-Age=2592000; Path=/; SameSite=Lax`,
    `ap_click=${CLICK}; Max-Age=2592000; Path=/; SameSite=Lax`,
  ]);
});

test("inputs parsed after the script runs are filled on DOMContentLoaded", async () => {
  const env = makeEnv({ readyState: "loading", inputs: [] });
  const tracker = await runAndWait(env);
  env.document.inputs.push(makeInput("ap_click_id"), makeInput("ap_visitor_id"));
  for (const fn of env.listeners.DOMContentLoaded || []) fn();
  assert.equal(env.input("ap_click_id").value, CLICK);
  assert.equal(env.input("ap_visitor_id").value, VISITOR);
  assert.equal(tracker.clickId(), CLICK);
});

test("a hanging request does not hold ready; a late answer is still stored", async () => {
  let answer;
  const timers = [];
  const env = makeEnv({
    fetchImpl: () => new Promise((resolve) => { answer = resolve; }),
    extra: { setTimeout: (fn) => { timers.push(fn); return timers.length; }, clearTimeout: () => {} },
  });
  const tracker = env.run();
  await new Promise((r) => setImmediate(r));
  assert.equal(timers.length, 1);
  timers[0]();
  await tracker.ready;
  assert.deepEqual(env.cookieWrites, []);
  answer(jsonResponse(201, { click_id: CLICK, visitor_id: VISITOR, cookie_days: 30 }));
  await new Promise((r) => setImmediate(r));
  assert.equal(env.cookieWrites.length, 2);
  assert.equal(env.input("ap_click_id").value, CLICK);
});

test("a broken environment never throws into the page", async () => {
  const env = makeEnv({ extra: { URLSearchParams: undefined, URL: undefined } });
  let tracker;
  assert.doesNotThrow(() => { tracker = env.run(); });
  await tracker.ready;
  assert.equal(env.fetchCalls.length, 0);

  const env2 = makeEnv();
  Object.defineProperty(env2.document, "cookie", { get() { throw new Error("denied"); }, set() { throw new Error("denied"); } });
  let tracker2;
  assert.doesNotThrow(() => { tracker2 = env2.run(); });
  await tracker2.ready;
  assert.equal(tracker2.clickId(), null);
});

test("only window.AffiliateTracker is added to the global scope, and loading twice keeps the first", async () => {
  const env = makeEnv();
  const before = new Set(Object.keys(env.sandbox));
  const first = env.run();
  const added = Object.keys(env.sandbox).filter((k) => !before.has(k));
  assert.deepEqual(added, ["AffiliateTracker"]);
  await first.ready;
  assert.equal(env.run(), first);
  assert.equal(env.fetchCalls.length, 1);
});

test("the tracker API shape", async () => {
  const tracker = await runAndWait(makeEnv());
  assert.deepEqual(Object.keys(tracker).sort(), ["clickId", "ready", "visitorId"]);
  assert.equal(typeof tracker.ready.then, "function");
});

test("the script is under 6 KB", () => {
  const size = statSync(SCRIPT_PATH).size;
  assert.ok(size < 6 * 1024, `t.js is ${size} bytes`);
});

// --- the loader (loader.js): the snippet merchants paste --------------------------------------

const LOADER_PATH = new URL("../../static/affiliates/loader.js", import.meta.url);
const LOADER = readFileSync(LOADER_PATH, "utf8");
const README = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");

// A page with the loader pasted inline; `loadEvent()` fires the window's load event and
// `execute(el)` runs t.js as the browser would for the element the loader appended.
function makeLoaderEnv({ readyState = "interactive", url = "https://shop.example.com/?ref=jane" } = {}) {
  const windowListeners = {};
  const env = makeEnv({
    url,
    readyState,
    currentScript: false,
    extra: { addEventListener: (type, fn) => (windowListeners[type] ||= []).push(fn) },
  });
  const appended = [];
  env.document.createElement = (tag) => {
    const attrs = {};
    return {
      tagName: tag.toUpperCase(), attrs,
      setAttribute: (n, v) => { attrs[n] = String(v); },
      getAttribute: (n) => (Object.hasOwn(attrs, n) ? attrs[n] : null),
    };
  };
  env.document.head = { appendChild: (el) => appended.push(el) };
  const context = vm.createContext(env.sandbox);
  return {
    ...env,
    appended,
    paste(src = "https://acme.platform.com/t.js") {
      vm.runInContext(LOADER.replace("https://YOUR-PROGRAM-HOST/t.js", src), context, { filename: "loader.js" });
    },
    page(code) {
      return vm.runInContext(code, context, { filename: "page.js" });
    },
    loadEvent() {
      env.document.readyState = "complete";
      for (const fn of windowListeners.load || []) fn();
    },
    execute(el) {
      env.document.currentScript = el;
      vm.runInContext(SOURCE, context, { filename: "t.js" });
      env.document.currentScript = null;
    },
  };
}

test("loader: the page may use AffiliateTracker before t.js has loaded, and gets the ids", async () => {
  const env = makeLoaderEnv();
  env.paste();
  // The README's example, which threw a ReferenceError with a plain async <script>.
  const seen = env.page("AffiliateTracker.ready.then(() => [AffiliateTracker.clickId(), AffiliateTracker.visitorId()])");
  const early = env.sandbox.AffiliateTracker;
  assert.equal(early.clickId(), null);
  assert.equal(env.appended.length, 0, "nothing is loaded before the page's load event");

  env.loadEvent();
  assert.equal(env.appended.length, 1);
  const [el] = env.appended;
  assert.equal(el.src, "https://acme.platform.com/t.js");
  assert.equal(el.async, true);
  assert.equal(el.getAttribute("data-params"), "ref,via");

  env.execute(el);
  assert.deepEqual(Array.from(await seen), [CLICK, VISITOR]);
  assert.equal(env.sandbox.AffiliateTracker, early, "the page's reference stays the tracker");
  assert.equal(env.fetchCalls.length, 1);
  assert.equal(env.input("ap_click_id").value, CLICK);
});

test("loader: a platform that cannot be reached settles ready with no ids", async () => {
  const env = makeLoaderEnv();
  env.paste();
  env.loadEvent();
  env.appended[0].onerror();
  await env.sandbox.AffiliateTracker.ready;
  assert.equal(env.sandbox.AffiliateTracker.clickId(), null);
  assert.equal(env.fetchCalls.length, 0);
});

test("loader: on a page that has finished loading, t.js is loaded at once", () => {
  const env = makeLoaderEnv({ readyState: "complete" });
  env.paste();
  assert.equal(env.appended.length, 1);
});

test("loader: pasted twice, or t.js included twice, tracks once", async () => {
  const env = makeLoaderEnv();
  env.paste();
  env.paste();
  env.loadEvent();
  assert.equal(env.appended.length, 1);
  env.execute(env.appended[0]);
  env.execute(env.appended[0]);
  await env.sandbox.AffiliateTracker.ready;
  assert.equal(env.fetchCalls.length, 1);
});

test("the README shows the loader as it is", () => {
  const shown = LOADER.replace("https://YOUR-PROGRAM-HOST/t.js", "http://demo.localhost:8000/t.js");
  assert.ok(README.includes(shown), "README.md embeds affiliates/static/affiliates/loader.js");
});
