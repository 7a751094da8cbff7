// The console's entry point: the token field and a hash router over the runs, run and registry views.
import { setToken, token } from "/ui/api.js";
import { h } from "/ui/dom.js";
import { renderRegistry } from "/ui/registry.js";
import { renderRun, renderRuns } from "/ui/runs.js";

let current = new AbortController();

function route() {
  current.abort();
  current = new AbortController();
  const view = document.getElementById("view");
  const hash = location.hash.replace(/^#\/?/, "");
  const [section, id] = hash.split("/").map(decodeURIComponent);
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === (section || "runs"));
  }
  view.replaceChildren();
  const show = (promise) => promise.catch((err) => {
    if (!current.signal.aborted) view.replaceChildren(h("p", { class: "error", id: "view-error" }, String(err.message || err)));
  });
  if (section === "registry") show(renderRegistry(view, current.signal));
  else if (section === "runs" && id) show(renderRun(view, id, current.signal));
  else show(renderRuns(view, current.signal));
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  input.value = token();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    route();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    input.value = "";
    setToken("");
    route();
  });
}

setupToken();
window.addEventListener("hashchange", route);
route();
