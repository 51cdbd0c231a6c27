/*
 * flask-analytics tracker: first-party, cookieless, no fingerprinting.
 *
 * This is the readable source; pages load a build of it (rebuild with
 * `cd tracker && npm ci && npm run build`, see tracker/README.md): tracker.min.js, or
 * tracker.manual.min.js when pageviews are sent by the page (data-pageviews="false").
 * The builds fix BUILD ("auto" or "manual") at build time and drop the code the other
 * build and debug mode need; this file, served as it is (debug), reads data-pageviews
 * and data-debug instead. Budget: 2,000 bytes minified + gzipped per build, so the code
 * is shaped for the minifier: one closure, locals and arrow functions, default
 * parameters instead of local declarations (never in callbacks of map/filter, which
 * pass more arguments), `let` only (one keyword gzips smaller than `const` and `let`).
 * Globals are written out (Math, location, navigator, Date.now): gzip codes their
 * repeats in fewer bytes than aliases cost, and the attributes are read through
 * `dataset` (data-sample-rate is attr.sampleRate).
 *
 * Included with {{ analytics_script(**options) }}, which writes the data attributes:
 *   data-api                where events are POSTed (required; the collect endpoint)
 *   data-mode               strict | balanced (default) | full
 *       strict    stores nothing on the device and sends only name, url and referrer
 *                 (plus event_id, offset_ms and hash_routing, which describe the
 *                 request, not the visitor): no props, custom fields, screen width,
 *                 engagement, vitals.
 *       balanced  everything below; nothing stored on the device.
 *       full      balanced + events whose delivery is in doubt when the page is hidden
 *                 (sending failed, or a request is unanswered) are kept in localStorage
 *                 (one key, ≤ 200 events) and replayed, once, by the next page load.
 *   data-sample-rate        0..1: share of page loads that are tracked (default 1)
 *   data-hash-routing       the fragment names the page (#/route): hashchange is a pageview
 *   data-outbound, data-forms  "false" turns that tracking off
 *   data-downloads          "false", or the extensions as a regex alternation ("pdf|zip")
 *   data-exclude            a regular expression; pages whose path matches send nothing
 *                           (analytics_script() writes it from ANALYTICS_EXCLUDED_PATHS
 *                           and its exclude= globs, with the server's fnmatch meaning)
 *   data-dnt                "false" ignores Do Not Track / Global Privacy Control
 *   data-allow-automation   also run under WebDriver (navigator.webdriver): for tests
 *   data-fields             a JSON object of custom fields (below) for every event
 *   data-batch-size         events per request (default 20; at most ANALYTICS_MAX_BATCH)
 *   data-batch-timeout      ms a queued event waits for more before it is sent (default 1000)
 *   data-pageviews          "false": no automatic pageview; the page calls fa.pageview(url?)
 *                           (the manual build; analytics_script(auto_pageviews=False))
 *   data-page               JSON fields of the first pageview only: page_id (the server
 *                           pageview's id, ANALYTICS_SERVER_PAGEVIEWS) and status (404...)
 *   data-debug              log each batch to the console instead of sending it (this
 *                           readable file only: analytics_script(debug=True) serves it)
 *
 * Events (the collect protocol in DESIGN.md):
 *   pageview     on load (once a prerendered page is shown) and on history navigation
 *                (pushState, replaceState, popstate; hashchange with hash routing), once
 *                per path: replacing or re-pushing the same path, or changing only the
 *                query, counts once. Referrer: the document's for the first pageview,
 *                the URL of the previous pageview for the next ones (what a multi-page
 *                site's browser sends; the endpoint treats it as internal navigation).
 *                With data-pageviews="false" none of this: window.fa.pageview(url?) sends
 *                the pageview of `url` (absolute or relative; default: the current
 *                location), the same way and with the same "once per path" rule, and
 *                engagement is reported only for pages that had one. Calls made before
 *                this script ran are kept by a stub that also queues pageview:
 *   <script>window.fa=window.fa||{q:[],track:function(){this.q.push(arguments)},
 *     pageview:function(u){this.q.push([0,u])}}</script>
 *   outbound, download  {url} without query or fragment (those carry tokens); sent at
 *                once with a keepalive request, which outlives the page. Left and middle
 *                clicks; downloads by extension or by the download attribute.
 *   form_submit  {form: id or name attribute}; never a field value.
 *   engagement   {engagement_ms, scroll_depth}: visible time since the last report and
 *                deepest scroll (0-100), sent when the page is hidden or left (also by a
 *                history navigation) once it was visible ≥ 3 s: a glance stays a bounce.
 *   web_vitals   {lcp, inp, cls, ttfb} of the page load, once, when first hidden.
 *   custom       window.fa.track(name, props, options); props keep strings, numbers and
 *                booleans (the server leaves out, with a warning, strings over 2000
 *                chars, numbers beyond ±2**53 or not finite, keys past 30 or over 300
 *                chars). options.revenue, {amount, currency} (amount a decimal string
 *                such as "12.50" or a number; currency an ISO 4217 code such as "EUR"),
 *                is the event's revenue, sent as given (also in strict mode) and
 *                checked by the server, which leaves a bad one out of the event. Calls
 *                made before this deferred script ran are kept by a stub in <head> and
 *                replayed:
 *   <script>window.fa=window.fa||{q:[],track:function(){this.q.push(arguments)}}</script>
 *
 * Custom fields: values of the host's custom event columns, sent as top-level keys of
 * every event (not in strict mode: they describe the visitor). The endpoint records those
 * declared in ANALYTICS_CLIENT_FIELDS and ignores the others. They come from data-fields
 * (analytics_script(fields={"ab_variant": "B"}), checked against the columns there) and
 * from window.fa.set({ab_variant: "B"}), which merges into them for the events created
 * from then on; null, or anything but a string, a number or a boolean, unsets a key. fa.set exists once this script ran, tracked page or not (the
 * stub above queues only track). Keys must be column names: analytics_script() refuses
 * the protocol's field names, fa.set does not check (name, url, event_id... would be
 * overridden, but a "referrer" or "props" would be sent as such). A value its column
 * cannot hold (too long, wrong type) is left out of each event by the endpoint, with a
 * warning in its answer; the rest of the event is stored.
 *
 * Delivery: events are batched (≤ 20 per request, sent after 1 s or at 20; see
 * data-batch-size and data-batch-timeout) and handed
 * to sendBeacon when the page is hidden. Network errors, 429 and 5xx are retried with
 * exponential backoff (1 s, 2 s, 4 s ... ≤ 60 s) and ±50 % jitter; other 4xx are final.
 * Every event has a client UUID, so retries never double count; queued events carry
 * offset_ms (their age) and are dropped after 24 h.
 *
 * Nothing here throws into the host page: every entry point is wrapped by `guard`.
 */
(() => {
  let w = window, d = document;
  /** f wrapped so that nothing it throws reaches the caller (the host page). */
  let guard = (f) => (...a) => {
    try {
      return f(...a);
    } catch {}
  };
  let attr = d.currentScript.dataset; // data-sample-rate is attr.sampleRate
  /** A boolean data attribute: absent → dflt, "false" → false, anything else → true. */
  let flag = (k, dflt) => ((k = attr[k]) == null ? dflt : k != "false");
  let on = (target, type, f, capture) => target.addEventListener(type, guard(f), capture);
  let stub = w.fa || {};
  /** Copies into `to` the strings, numbers and booleans of `from`; other values (null,
   * objects: a BigInt or a cycle would break JSON) copy as `none`, never given:
   * undefined, which JSON leaves out, so fa.set({k: null}) unsets k. No coercion (typeof
   * first): a BigInt, Symbol or null-prototype object must not throw halfway. The
   * server checks the rest (collect protocol v2): a prop or field over a limit (strings
   * over 2000 chars, numbers beyond ±2**53, NaN, more than 30 keys...) is left out of
   * its event with a warning, the event is stored. */
  let clean = (from, to = {}, none) => {
    for (let k in from) {
      let v = from[k];
      to[k] = typeof v == "string" || typeof v == "number" || v === !!v ? v : none;
    }
    return to;
  };
  // Custom columns of every event (not in strict mode): data-fields, then fa.set(...).
  let fields = clean(guard(JSON.parse)(attr.fields));
  // The page's own fields for its first pageview (data-page, JSON): the server's page id
  // (server pageviews: both derive one event id from it, so the page counts once) and
  // its status (a 404 page).
  let page = guard(JSON.parse)(attr.page);
  // fa.set works at once (also when this page is not tracked); fa.track is a no-op until
  // (unless) tracking starts.
  let api = (w.fa = { track() {}, set: guard((values) => void clean(values, fields)) });
  // Which build runs: the minified ones fix BUILD; this readable file reads the attributes.
  let readable = typeof BUILD == "undefined";
  let auto = readable ? flag("pageviews", 1) : BUILD == "auto";
  // fa.pageview exists when pages send their own pageviews, tracked or not (a no-op then).
  auto || (api.pageview = () => {});

  guard(() => {
    let mode = attr.mode, strict = mode == "strict", dl = attr.downloads;
    // Not tracked: WebDriver-driven browsers (tests, scrapers; the server also drops
    // headless user agents as bots), Do Not Track / Global Privacy Control when respected,
    // page loads outside the sample (per load: nothing is stored to make it sticky).
    if (navigator.webdriver && !flag("allowAutomation") ||
        flag("dnt", 1) && (navigator.doNotTrack == 1 || navigator.globalPrivacyControl) ||
        !(Math.random() < (attr.sampleRate || 1))) return;

    let endpoint = attr.api; // required: analytics_script() always writes it
    let size = attr.batchSize || 20, debug = readable && flag("debug");
    let hash = flag("hashRouting");
    let downloads = flag("downloads", 1) &&
      RegExp("\\.(" + (dl || "pdf|csv|docx?|xlsx?|pptx?|zip|gz|dmg|exe|mp[34]") + ")$", "i");
    let excluded = RegExp(attr.exclude || "^$");
    let skip; // the current page is excluded
    let storage = mode == "full" && guard(() => localStorage)();

    let queue = []; // [createdAt, event] pairs waiting to be sent
    let inflight = []; // pairs handed to fetch and not answered yet
    let timer = 0, retries = 0;

    /** The JSON body of a batch; offset_ms is each event's age at this send. Events
     * older than 24 h are left out: the server would refuse the whole batch. */
    let body = (batch, t = Date.now()) => JSON.stringify(batch
      .filter(([created]) => t - created < 864e5)
      .map(([created, e]) => (e.offset_ms = Math.max(0, t - created), e)));

    /** Adds unconfirmed events to those kept for the next page load (full mode only;
     * any tab's, at most 200, under one key the next load reads and removes). */
    let save = guard((items) => storage &&
      (storage.fa_q = JSON.stringify([...JSON.parse(storage.fa_q || "[]"), ...items].slice(-200))));

    let post = (batch, data, fail = () => {
      // Network error, 429 or 5xx: again later, with exponential backoff and jitter.
      queue.unshift(...batch);
      clearTimeout(timer);
      timer = setTimeout(flush, Math.min(6e4, 500 * 2 ** ++retries) * (0.5 + Math.random()));
    }) => {
      inflight.push(...batch);
      // A string body is sent as text/plain: a "simple" request, no CORS preflight.
      fetch(endpoint, { method: "POST", body: data, keepalive: true })
        .finally(() => (inflight = inflight.filter((x) => !batch.includes(x))))
        // 2xx done; 4xx final (send() only builds events the server accepts).
        .then((r, s = r.status) => (s == 429 || s > 499 ? fail() : (retries = 0)), fail);
    };

    /** Sends the whole queue in batches of ≤ size (keepalive and beacons cap at 64 KB). */
    let flush = guard((beacon, batch, data) => {
      clearTimeout(timer);
      timer = 0;
      while (queue[0]) {
        data = body(batch = queue.splice(0, size));
        if (debug) console.log("flask-analytics debug, not sent to " + endpoint + ": " + data);
        else (beacon && navigator.sendBeacon(endpoint, data)) || post(batch, data);
      }
    });

    /** Queues one event (for `url`, default the current page) unless the page is excluded. */
    let send = (name, props, extra, url = location.href, e) => {
      if (skip) return;
      e = {
        ...!strict && fields, // first: what the tracker sets below overrides them
        name,
        url: url.slice(0, 2e3),
        // crypto.randomUUID needs a secure context (HTTPS, localhost). Elsewhere a blob
        // URL, which ends with a random v4 UUID from the browser's CSPRNG in every
        // browser, is the shortest fallback (each such empty blob URL lives until the
        // page unloads).
        event_id: crypto.randomUUID && crypto.randomUUID() || URL.createObjectURL(new Blob()).slice(-36),
        hash_routing: hash,
        ...extra,
      };
      if (!strict) {
        e.screen_width = w.innerWidth;
        if (props) e.props = clean(props);
      }
      queue.push([Date.now(), e]);
      // Flush at `size`, else after the batch timeout; while backing off, the retry timer decides.
      queue[size - 1] && !retries ? flush() : timer || (timer = setTimeout(flush, attr.batchTimeout || 1e3));
    };
    /** For events a navigation may follow: sent now (keepalive outlives the page). */
    let urgent = (name, props) => {
      send(name, props);
      retries || flush();
    };

    // Engagement of the current page: visible ms since the last report and the deepest
    // scroll so far (0-100). Reported once the page was visible ≥ 3 s: a glance is a bounce;
    // with manual pageviews, only once a page had its pageview.
    let engaged = 0, visibleSince = d.hidden ? 0 : Date.now(), depth = 0;
    let measure = () => {
      let ratio = (w.scrollY + w.innerHeight) / d.documentElement.scrollHeight;
      depth = Math.max(depth, Math.min(100, ratio * 100) + 0.5 | 0); // ≤ 100: overscroll, zoom
    };
    /** The page is left or hidden: counts its visible time so far, reports it if ≥ 3 s. */
    let leave = (t = Date.now()) => {
      measure();
      engaged += visibleSince && t - visibleSince;
      visibleSince = visibleSince && t;
      if (strict || engaged < 3e3 || !(auto || lastUrl)) return;
      send("engagement", 0, { engagement_ms: engaged, scroll_depth: depth }, lastUrl);
      engaged = 0;
    };

    let lastKey, lastUrl;
    // The pageview of `u` (fa.pageview's url, else the location): its key is its path,
    // plus the fragment with hash routing (else `hash`, the same false or undefined for
    // every page). Listeners pass their event as `_`.
    let pageview = guard((_, url, u = auto ? location : new URL(url || location, location), key = u.pathname + (hash && u.hash)) => {
      if (key != lastKey) {
        // A new page of a single-page app: report the previous one, start afresh.
        leave();
        engaged = depth = 0;
        skip = excluded.test(u.pathname);
        send("pageview", 0, { ...page, referrer: (lastUrl || d.referrer).slice(0, 2e3) }, u.href, page = 0); // "" is none
        lastKey = key;
        lastUrl = u.href;
      }
    });

    // Web vitals of the page load, without a library: TTFB; LCP; INP as the slowest
    // interaction of ≥ 16 ms (what INP is below 50 interactions); CLS as the largest
    // session window of shifts (shifts < 1 s apart; the 5 s cap of a window is left out
    // for size: it only matters on pages that shift continuously). One observer; entries
    // are told apart by the third letter of their type. `vitals` is 0 once sent, or in
    // strict mode: writes to it are then no-ops.
    let vitals = !strict && { cls: 0 }, win = 0, winLast = 0;
    guard((o) => {
      o = new PerformanceObserver(guard((list) => list.getEntries().map((e) => {
        let s = e.startTime, type = e.entryType[2];
        if (type == "v") vitals.ttfb = e.responseStart | 0; // navigation
        if (type == "r") vitals.lcp = s | 0; // largest-contentful-paint
        if (type == "e" && e.interactionId) vitals.inp = Math.max(~~vitals.inp, e.duration); // event
        if (type == "y" && !e.hadRecentInput) { // layout-shift
          win = s - winLast < 1e3 ? win + e.value : e.value;
          winLast = s;
          vitals.cls = Math.max(vitals.cls, win);
        }
      })));
      for (let type of ["navigation", "largest-contentful-paint", "layout-shift", "event"]) {
        o.observe({ type, buffered: true, durationThreshold: 16 });
      }
    })();

    /** The page is hidden or going away: report, then hand everything to sendBeacon. */
    let bye = () => {
      leave();
      vitals && send("web_vitals", vitals);
      vitals = 0;
      // A beacon never says whether it arrived: while sending fails or a request is still
      // unanswered, keep every unconfirmed event for the next load (taken before the
      // queue is emptied). If they did arrive, the server drops the replayed copies.
      if (retries || inflight[0]) save([...inflight, ...queue]);
      flush(1);
    };

    // Replay what earlier pages (any tab) kept; removed at once, so replayed once.
    guard(() => {
      queue.push(...JSON.parse(storage.fa_q)); // throws (nothing to do) when nothing is kept
      delete storage.fa_q;
    })();

    // Links: downloads (by extension or download attribute), then outbound links.
    let click = (e, a = e.target.closest("a"), url = a && a.origin + a.pathname, name) => {
      if (/^http/.test(url) && e.button < 2 &&
          (name = downloads && (a.hasAttribute("download") || downloads.test(a.pathname))
            ? "download"
            : flag("outbound", 1) && a.host != location.host && "outbound")) urgent(name, { url });
    };
    on(d, "click", click, 1);
    on(d, "auxclick", click, 1); // middle click: opens a new tab
    if (flag("forms", 1)) {
      // The form's own attributes: f.id would be a field named "id".
      on(d, "submit", (e, f = e.target) =>
        urgent("form_submit", { form: f.getAttribute("id") || f.getAttribute("name") }), 1);
    }

    on(w, "scroll", measure);
    on(d, "visibilitychange", () => {
      if (d.hidden) {
        bye();
        visibleSince = 0;
      } else visibleSince = Date.now();
    });
    on(w, "pagehide", bye);

    // Revenue ({amount, currency}) goes as it is given, in every mode (it describes the
    // order, not the visitor); the server checks it and leaves a bad one out.
    api.track = guard((name, props, o) => name && send(("" + name).slice(0, 120), props, o && { revenue: o.revenue }));
    if (!auto) api.pageview = (url) => pageview(0, url);
    else {
      // Single-page apps.
      for (let k of ["pushState", "replaceState"]) {
        let orig = history[k];
        // Both return undefined; a throw of the original (bad URL) still reaches its caller.
        history[k] = function () {
          orig.apply(this, arguments);
          pageview();
        };
      }
      on(w, "popstate", pageview);
      if (hash) on(w, "hashchange", pageview);
      // A prerendered page is not seen until it is activated.
      d.prerendering ? on(d, "prerenderingchange", pageview) : pageview();
    }
  })();

  // The stub queues fa.pageview(u) as [0, u] (a track call with no name: a no-op there).
  for (let a of stub.q || []) auto || a[0] !== 0 ? api.track(...a) : api.pageview(a[1]);
})();
