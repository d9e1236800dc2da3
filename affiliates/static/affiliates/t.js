/* Affiliate click tracking. No conversions or money: the merchant's backend reports those. */
(function () {
  "use strict";
  var w = window, d = document, noop = function () {}, vid = null, cid = null, ready;
  // The loader's stand-in (loader.js) is taken over; a tracker that is already running is kept.
  var stub = w.AffiliateTracker;
  if (stub && typeof stub._done !== "function") return;
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    CODE = /^[\w-]{1,64}$/, SRC = /\/t\.js([?#]|$)/;
  function uuid(v) { return typeof v === "string" && UUID.test(v) ? v.toLowerCase() : null; }
  function cookie(name) {
    try {
      var m = ("; " + d.cookie).split("; " + name + "=")[1];
      return m ? uuid(m.split(";")[0]) : null;
    } catch (e) { return null; }
  }
  function fill() {
    try {
      [["ap_click_id", cid], ["ap_visitor_id", vid]].forEach(function (p) {
        if (p[1]) [].forEach.call(d.querySelectorAll('input[name="' + p[0] + '"]'), function (el) { el.value = p[1]; });
      });
    } catch (e) {}
  }
  try {
    vid = cookie("ap_vid");
    cid = cookie("ap_click");
    var s = d.currentScript, all = d.getElementsByTagName("script"), i, base = null;
    if (!s || !SRC.test(s.src)) for (s = null, i = all.length; i-- && !s;) if (SRC.test(all[i].src)) s = all[i];
    var attr = function (n) { return (s && s.getAttribute(n)) || ""; };
    try { base = new URL(s.src, location.href).origin; } catch (e) {}
    var names = attr("data-params").split(",").map(function (x) { return x.trim(); }).filter(function (x) { return CODE.test(x); });
    if (!names.length) names = ["ref", "via"];
    var domain = attr("data-cookie-domain").trim();
    if (!/^\.?[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(domain)) domain = "";
    var q = new URLSearchParams(location.search), code = null, click = uuid(q.get("ac_click"));
    for (i = 0; i < names.length; i++) {
      var raw = (q.get(names[i]) || "").trim();
      if (raw) { code = CODE.test(raw) ? raw : null; break; }
    }
    var set = function (name, value, days) {
      d.cookie = name + "=" + value + "; Max-Age=" + days * 86400 + "; Path=/" + (domain ? "; Domain=" + domain : "") +
        "; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    };
    var pick = function (keys) {
      var out = {};
      keys.forEach(function (n) { var v = q.get(n); if (v) out[n] = v.slice(0, 255); });
      return out;
    };
    if (click) {
      set("ap_click", click, 30);
      cid = click;
    } else if (code && base && base !== "null" && typeof fetch === "function") {
      var body = { code: code };
      if (vid) body.visitor_id = vid;
      body.landing_url = String(location.href);
      body.referrer = String(d.referrer || "");
      body.utm = pick(["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]);
      body.sub_ids = pick(["sub1", "sub2", "sub3", "sub4", "sub5"]);
      var timer, req = Promise.resolve().then(function () {
        return fetch(base + "/api/v1/track/clicks", {
          method: "POST", mode: "cors", credentials: "omit", keepalive: true,
          headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
        });
      }).then(function (res) {
        return res && res.ok && res.json().then(function (r) {
          var c = uuid(r && r.click_id), v = uuid(r && r.visitor_id), days = r && r.cookie_days;
          if (!c || !v) return;
          if (!(days >= 1 && days <= 3650 && days % 1 === 0)) days = 30;
          set("ap_vid", v, days);
          set("ap_click", c, days);
          vid = v;
          cid = c;
          fill(); // also after a timeout
        });
      }).catch(noop);
      // a hanging request must not hold `ready`
      ready = Promise.race([req, new Promise(function (r) { timer = setTimeout(r, 10000); })])
        .then(function () { clearTimeout(timer); });
    }
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", fill);
  } catch (e) {}
  ready = Promise.resolve(ready).then(fill).catch(noop);
  try {
    var api = stub || {};
    api.visitorId = function () { return vid; };
    api.clickId = function () { return cid; };
    if (stub) {
      // The page may hold the stand-in's `ready` already: it settles when this one does.
      ready.then(stub._done);
      delete stub._done;
    } else api.ready = ready;
    w.AffiliateTracker = api;
  } catch (e) {}
})();
