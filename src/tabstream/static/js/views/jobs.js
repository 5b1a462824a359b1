// Jobs: a table of the tenant's jobs with live status (polled while the page is open).

import { api, sleep } from "../api.js";
import { errorBox, fmtDuration, h, shortId, statusBadge, table, timeEl } from "../dom.js";

const POLL_MS = 2000;
const STATUSES = ["", "pending", "running", "completed", "failed", "cancelled"];

export async function jobsView(root, { query, signal }) {
  const status = query.get("status") || "";
  const filter = h("select#status-filter", {
    onchange: (e) => {
      location.hash = e.target.value ? `#/jobs?status=${e.target.value}` : "#/jobs";
    },
  }, STATUSES.map((s) => h("option", { value: s, selected: s === status }, s || "any")));
  const body = h("div#jobs-body", { "aria-busy": "true" });
  root.append(
    h("div.page-head", {},
      h("h1", {}, "Jobs"),
      h("a.button", { href: "#/run" }, "New run")),
    h("div.toolbar", {}, h("label", { for: "status-filter" }, "Status"), filter),
    body,
  );
  let datasets = new Map();
  try {
    const page = await api("/v1/datasets?limit=500", { signal });
    datasets = new Map(page.items.map((d) => [d.dataset_id, d.name]));
  } catch {
    /* names are a nicety */
  }
  let limit = 50;
  while (!signal.aborted) {
    try {
      const params = new URLSearchParams({ limit: String(limit) });
      if (status) params.set("status", status);
      const page = await api(`/v1/jobs?${params}`, { signal });
      if (signal.aborted) return;
      const rows = page.items.map((j) => jobRow(j, datasets));
      const more = page.next_cursor
        ? h("button.secondary", { type: "button", onclick: () => { limit += 50; } }, "Show more")
        : null;
      body.replaceChildren(
        table("Jobs, newest first (updates live)", ["Job", "Status", "Dataset", "Task", "Models", "Progress", "Created", "Duration"], rows, {
          className: "jobs",
          empty: "No jobs yet. Start one with New run.",
        }),
        more || "",
      );
      body.setAttribute("aria-busy", "false");
    } catch (err) {
      if (signal.aborted) return;
      body.replaceChildren(errorBox(err));
    }
    await sleep(document.hidden ? POLL_MS * 5 : POLL_MS, signal);
  }
}

function jobRow(j, datasets) {
  const done = j.progress?.trials_done ?? 0;
  const total = j.progress?.trials_total;
  const task = j.request?.task;
  return [
    h("a.mono", { href: `#/jobs/${j.job_id}`, "aria-label": `Job ${j.job_id}` }, shortId(j.job_id)),
    statusBadge(j.status),
    datasets.get(j.dataset_id) || shortId(j.dataset_id),
    task ? `${task.task_kind} · ${task.label_column}` : "—",
    (j.model_types || j.request?.model_types || ["default"]).join(", "),
    total
      ? h("span.progress-cell", {},
        h("progress", { max: total, value: done, "aria-label": `${done} of ${total} trials` }),
        ` ${done}/${total}`)
      : `${done}`,
    timeEl(j.created_at),
    fmtDuration(j.duration_s),
  ];
}
