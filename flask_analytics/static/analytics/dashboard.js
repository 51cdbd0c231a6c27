/* flask-analytics dashboard: progressive enhancement only. Every page works without it
   (rows filter and chips remove filters through plain links).
   - closes an open menu (period, comparison, filter) on Escape or a click elsewhere;
   - a click anywhere on a breakdown row follows the row's filter link;
   - the filter menu: shown only with this script, which composes its fields into one
     filter=DIMENSION:OP:VALUE parameter and suggests values (/api/suggest/<dimension>);
   - a table too wide for its panel shows its first two counts and an "All columns"
     toggle for the others;
   - the tab bar: the current tab scrolled into view, and a fade on the side where more
     tabs are (it scrolls on narrow screens);
   - on the realtime page, reloads the page every 30 seconds and updates the
     current-visitor count every 5 seconds in between.
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

  // -- tables: secondary columns behind a toggle where they do not fit -----------------

  var toggled = [];
  document.querySelectorAll("[data-columns-toggle]").forEach(function (button) {
    var panel = button.closest("[data-columns]");
    var scroll = panel ? panel.querySelector(".fa-table-scroll") : null;
    if (!scroll) return;
    var fit = function () {
      panel.classList.remove("is-narrow");
      var narrow = scroll.scrollWidth > scroll.clientWidth + 1;
      panel.classList.toggle("is-narrow", narrow && !panel.classList.contains("is-wide"));
      button.hidden = !narrow;
    };
    button.addEventListener("click", function () {
      var wide = panel.classList.toggle("is-wide");
      button.setAttribute("aria-pressed", wide ? "true" : "false");
      fit();
    });
    toggled.push(fit);
    fit();
  });
  if (toggled.length) {
    window.addEventListener("resize", function () {
      toggled.forEach(function (fit) { fit(); });
    });
  }

  // -- the tab bar: where it scrolls --------------------------------------------------

  var tabs = document.querySelector(".fa-tabs");
  if (tabs) {
    var edges = function () {
      var end = tabs.scrollWidth - tabs.clientWidth;
      tabs.classList.toggle("has-before", tabs.scrollLeft > 1);
      tabs.classList.toggle("has-after", tabs.scrollLeft < end - 1);
    };
    var current = tabs.querySelector("[aria-current]");
    // The current tab in view (centred) when the bar scrolls.
    var reveal = function () {
      if (!current || tabs.scrollWidth <= tabs.clientWidth) return;
      var box = current.getBoundingClientRect();
      var bar = tabs.getBoundingClientRect();
      if (box.left >= bar.left && box.right <= bar.right) return;
      tabs.scrollLeft += box.left - bar.left - (tabs.clientWidth - current.offsetWidth) / 2;
    };
    reveal();
    edges();
    tabs.addEventListener("scroll", edges, { passive: true });
    window.addEventListener("resize", function () {
      reveal();
      edges();
    });
  }

  // -- realtime -------------------------------------------------------------------------

  var live = document.querySelector("[data-realtime-url]");
  if (!live) return;
  // The whole page again every data-reload seconds (a meta refresh would also reload
  // a page whose reader asked for no such thing: this one waits while a menu is open
  // or the tab is hidden).
  var reloadEvery = Number(live.getAttribute("data-reload")) * 1000;
  if (reloadEvery > 0) {
    var reload = function () {
      if (document.hidden || document.querySelector("details.fa-menu[open]")) {
        window.setTimeout(reload, 5000);
      } else {
        window.location.reload();
      }
    };
    window.setTimeout(reload, reloadEvery);
  }
  if (!window.fetch) return;
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
