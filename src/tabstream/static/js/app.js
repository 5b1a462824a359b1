// The dashboard shell: sign-in, hash routing (#/jobs, #/jobs/<id>, #/run, #/datasets,
// #/models) and one view at a time. Each view gets an AbortSignal that fires when the user
// leaves it (stops polling and event streams).

import { session, signIn } from "./api.js";
import { announce, errorBox, h } from "./dom.js";
import { datasetsView } from "./views/datasets.js";
import { jobView } from "./views/job.js";
import { jobsView } from "./views/jobs.js";
import { modelsView } from "./views/models.js";
import { runView } from "./views/run.js";

const view = document.getElementById("view");
const main = document.getElementById("main");
let current = null;
let signOutReason = "";

const ROUTES = [
  [/^\/jobs\/([0-9a-f-]{36})$/i, "jobs", jobView, "Job"],
  [/^\/jobs$/, "jobs", jobsView, "Jobs"],
  [/^\/run$/, "run", runView, "New run"],
  [/^\/datasets$/, "datasets", datasetsView, "Datasets"],
  [/^\/models$/, "models", modelsView, "Models"],
];

function parseHash() {
  let raw = location.hash.replace(/^#/, "");
  if (!raw.startsWith("/")) raw = "/jobs";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

function route() {
  current?.abort();
  current = new AbortController();
  const signedIn = Boolean(session.get());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("session").hidden = !signedIn;
  if (!signedIn) {
    renderSignIn();
    return;
  }
  const { path, query } = parseHash();
  const match = ROUTES.map(([re, nav, fn, title]) => [path.match(re), nav, fn, title]).find(([m]) => m);
  for (const a of document.querySelectorAll("#nav a")) {
    if (match && a.dataset.route === match[1]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  view.replaceChildren();
  if (!match) {
    view.append(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/jobs" }, "Go to jobs")));
    return;
  }
  const [m, , fn, title] = match;
  document.title = `${title} · tabstream`;
  fn(view, { id: m[1], query, signal: current.signal }).catch((err) => {
    if (!current.signal.aborted) view.append(errorBox(err));
  });
}

function renderSignIn() {
  document.title = "Sign in · tabstream";
  const input = h("input#token", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "token-help",
    spellcheck: "false",
  });
  const message = h("div#sign-in-error", { role: "alert" });
  if (signOutReason) message.append(h("p.alert", {}, signOutReason));
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form.card.sign-in", {
    "aria-labelledby": "sign-in-title",
    onsubmit: async (e) => {
      e.preventDefault();
      message.replaceChildren();
      button.disabled = true;
      try {
        await signIn(input.value);
        signOutReason = "";
        announce("Signed in");
        if (!location.hash || location.hash === "#/") location.hash = "#/jobs";
        else route();
        main.focus();
      } catch (err) {
        message.append(h("p.alert", {}, `Sign-in failed: ${err.message}`));
        input.focus();
      } finally {
        button.disabled = false;
      }
    },
  },
    h("h1#sign-in-title", {}, "Sign in"),
    h("label", { for: "token" }, "API token"),
    input,
    h("p#token-help.hint", {},
      "A token from TABSTREAM_API_TOKENS, or the one `tabstream up` printed (also in <data dir>/api.token). ",
      "It is exchanged for a short-lived session kept only in this tab."),
    button,
    message,
  );
  view.replaceChildren(form);
  input.focus();
}

// The skip link moves focus without touching the hash (the hash is the router's).
document.querySelector(".skip-link").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
document.getElementById("sign-out").addEventListener("click", () => session.clear("Signed out."));
window.addEventListener("tabstream:signed-out", (e) => {
  signOutReason = e.detail || "";
  route();
});
window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});
route();
