/* flask-analytics dashboard: progressive enhancement only. Every page works without it
   (rows filter and chips remove filters through plain links).
   - closes an open menu (period, comparison, filter) on Escape or a click elsewhere;
   - a click anywhere on a breakdown row follows the row's filter link;
   - the filter menu: shown only with this script, which composes its fields into one
     filter=DIMENSION:OP:VALUE parameter and suggests values (/api/suggest/<dimension>);
   - on the realtime page, updates the current-visitor count every 5 seconds between the
     page's own 30-second refreshes.
   Data is written with textContent and option values, never as HTML. */
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

  // -- rows: the whole row follows its filter link ------------------------------------

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (event.defaultPrevented || event.button !== 0 || !target.closest) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    // Links, form fields and a text selection keep their own behaviour.
    if (target.closest("a, button, input, select, summary, label")) return;
    if (window.getSelection && String(window.getSelection())) return;
    var row = target.closest(".fa-table tr");
    var link = row ? row.querySelector("a[data-filter-link]") : null;
    if (link) window.location.assign(link.href);
  });

  // -- the filter menu ------------------------------------------------------------------

  /* A typed-in value is filter syntax ("A|B" is A or B); a suggested one is literal. */
  function escapeValue(text) {
    return text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|");
  }

  function filterMenu(form) {
    var menu = form.closest("details");
    var field = function (name) {
      return form.querySelector('[data-filter-field="' + name + '"]');
    };
    var dimension = field("dimension");
    var key = field("key");
    var keyLabel = form.querySelector("[data-filter-key]");
    var op = field("op");
    var value = field("value");
    var list = form.querySelector("[data-filter-suggestions]");
    var base = form.getAttribute("data-suggest-url");
    var timer = null;
    var asked = 0;

    menu.hidden = false;

    function chosen() {
      return dimension.value === "prop:" ? "prop:" + key.value.trim() : dimension.value;
    }

    function fill(values) {
      list.textContent = "";
      values.forEach(function (item) {
        var option = document.createElement("option");
        option.value = escapeValue(String(item.value));
        list.appendChild(option);
      });
    }

    function suggest() {
      var name = chosen();
      var ticket = ++asked;
      // Properties have no list of values to offer.
      if (!window.fetch || name.indexOf("prop:") === 0) {
        fill([]);
        return;
      }
      var params = new URLSearchParams();
      form.querySelectorAll('input[type="hidden"]').forEach(function (input) {
        params.append(input.name, input.value);
      });
      params.set("q", value.value);
      fetch(base + encodeURIComponent(name) + "?" + params.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (data) {
          if (ticket === asked) fill(data.values || []);
        })
        .catch(function () {
          if (ticket === asked) fill([]);
        });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(suggest, 150);
    }

    dimension.addEventListener("change", function () {
      var property = dimension.value === "prop:";
      keyLabel.hidden = !property;
      key.required = property;
      value.value = "";
      suggest();
    });
    key.addEventListener("input", later);
    value.addEventListener("input", later);
    menu.addEventListener("toggle", function () {
      if (menu.open) {
        suggest();
        dimension.focus();
      }
    });

    form.addEventListener("submit", function () {
      var name = chosen();
      // A filter on the same dimension is replaced, as a row's link does.
      form.querySelectorAll('input[name="filter"]').forEach(function (input) {
        if (input.getAttribute("data-filter-dimension") === name) input.remove();
      });
      var added = document.createElement("input");
      added.type = "hidden";
      added.name = "filter";
      added.value = name + ":" + op.value + ":" + value.value;
      form.appendChild(added);
    });
  }

  document.querySelectorAll("form[data-filter-form]").forEach(filterMenu);

  // -- realtime -------------------------------------------------------------------------

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
