/* flask-analytics dashboard: progressive enhancement only. Every page works without it.
   - closes an open menu (period, comparison) on Escape or a click elsewhere;
   - on the realtime page, updates the current-visitor count every 5 seconds between the
     page's own 30-second refreshes. Numbers are written with textContent, never as HTML. */
(function () {
  "use strict";

  function closeMenus(except) {
    document.querySelectorAll("details.fa-menu[open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  document.addEventListener("click", function (event) {
    var menu = event.target.closest ? event.target.closest("details.fa-menu") : null;
    closeMenus(menu);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });

  var live = document.querySelector("[data-realtime-url]");
  if (!live || !window.fetch) return;
  var url = live.getAttribute("data-realtime-url");
  var failures = 0;

  function update() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        document.querySelectorAll('[data-realtime="visitors"]').forEach(function (node) {
          node.textContent = String(Number(data.visitors) || 0);
        });
      })
      .catch(function () {
        failures += 1;
      })
      .then(function () {
        if (failures < 3) window.setTimeout(update, 5000);
      });
  }

  window.setTimeout(update, 5000);
})();
