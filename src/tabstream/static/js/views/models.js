// Models: registered models (single and ensembles) with their metrics and jobs.

import { api } from "../api.js";
import { h, metricsText, shortId, table, timeEl } from "../dom.js";

export async function modelsView(root, { signal }) {
  const page = await api("/v1/models?limit=500", { signal });
  root.append(
    h("div.page-head", {}, h("h1", {}, "Models")),
    table("Registered models, newest first", ["Model ID", "Kind", "Families", "Task", "Metrics", "Job", "Features", "Created"],
      page.items.map((m) => [
        h("span.mono", { title: m.model_id }, shortId(m.model_id)),
        m.kind,
        (m.families || []).join(", "),
        m.task ? `${m.task.task_kind} · ${m.task.label_column}` : "—",
        metricsText(m.metrics),
        m.job_id ? h("a.mono", { href: `#/jobs/${m.job_id}`, "aria-label": `Job ${m.job_id}` }, shortId(m.job_id)) : "—",
        String((m.features || []).length),
        timeEl(m.created_at),
      ]), { className: "models", empty: "No models yet: they are registered when a run completes." }),
    h("p.hint", {}, "Predict with POST /v1/models/{id}/predict (see the API reference) or `tabstream predict`."),
  );
}
