// A tiny single-page section: links swap the view with history.pushState, which the
// analytics tracker counts as pageviews; the back button works too.
(() => {
  const views = {
    "/app": "Your notes: nothing here yet. Try Search or Settings.",
    "/app/search": "Search your notes (pretend).",
    "/app/settings": "Settings: theme, export, account.",
  };
  const view = document.getElementById("spa-view");
  const render = () => { view.textContent = views[location.pathname] || "Not found"; };
  document.addEventListener("click", (e) => {
    const link = e.target.closest("a[data-spa]");
    if (!link) return;
    e.preventDefault();
    if (link.pathname !== location.pathname) history.pushState({}, "", link.pathname);
    render();
  });
  window.addEventListener("popstate", render);
  render();
})();
