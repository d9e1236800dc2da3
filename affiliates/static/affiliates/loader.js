/* The snippet a merchant pastes (the README shows it with the platform's host): defines
   AffiliateTracker at once, so code on the page may use it before t.js has loaded, and loads
   t.js only after the page's load event, so a slow or unreachable platform never holds it.
   `ready` resolves when t.js is done, or at once with no ids if t.js cannot be loaded. */
(function (w, d, src, params) {
  if (w.AffiliateTracker) return;
  var t = w.AffiliateTracker = {
    clickId: function () { return null; },
    visitorId: function () { return null; }
  };
  t.ready = new Promise(function (done) { t._done = done; });
  function load() {
    var s = d.createElement("script");
    s.async = true;
    s.src = src;
    s.setAttribute("data-params", params);
    s.onerror = function () { t._done(); };
    (d.head || d.documentElement).appendChild(s);
  }
  if (d.readyState === "complete") load(); else w.addEventListener("load", load);
})(window, document, "https://YOUR-PROGRAM-HOST/t.js", "ref,via");
