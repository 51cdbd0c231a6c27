// Custom events: which plan a visitor looked at, with window.fa.track(name, props).
document.addEventListener("click", (e) => {
  const button = e.target.closest("button.choose");
  if (!button) return;
  if (window.fa) window.fa.track("choose_plan", { plan: button.dataset.plan });
  location.href = "/signup";
});
