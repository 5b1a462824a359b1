// New run: a form for POST /v1/trainer/run. Field errors from a 422 are shown next to their
// fields (aria-invalid + aria-describedby) and summarised in an alert.

import { api, idempotencyKey } from "../api.js";
import { announce, h } from "../dom.js";

// Mirrors tabstream.schemas.checks (MODEL_TYPES, metrics_for).
const MODEL_TYPES = ["xgboost", "tabm", "xrfm", "tabicl"];
const CLASSIFICATION = ["auc", "accuracy", "neg_class_error", "logloss", "f1"];
const REGRESSION = ["rmse", "mae", "r2"];
const TASKS = {
  binclass: CLASSIFICATION,
  multiclass: CLASSIFICATION,
  regression: REGRESSION,
  forecasting: [...REGRESSION, "mase", "smape"],
  sequence_binclass: CLASSIFICATION,
  sequence_multiclass: CLASSIFICATION,
  sequence_regression: REGRESSION,
};
const SEQUENTIAL = (kind) => kind === "forecasting" || kind.startsWith("sequence_");

export async function runView(root, { query, signal }) {
  const page = await api("/v1/datasets?limit=500", { signal });
  const datasets = page.items;
  root.append(h("div.page-head", {}, h("h1", {}, "New run")));
  if (!datasets.length) {
    root.append(h("p", {}, "Upload a dataset first: ", h("a", { href: "#/datasets" }, "Datasets"), "."));
    return;
  }
  const wanted = query.get("dataset");
  const f = {};
  const field = (key, label, control, hint) => {
    f[key] = control;
    const hintId = `${control.id}-hint`;
    const errId = `${control.id}-error`;
    control.setAttribute("aria-describedby", [hint ? hintId : "", errId].filter(Boolean).join(" "));
    return h(`div.field#field-${key}`, {},
      h("label", { for: control.id }, label),
      control,
      hint ? h(`p.hint#${hintId}`, {}, hint) : "",
      h(`p.field-error#${errId}`, {}));
  };
  const select = (id, options, selected) => h(`select#${id}`, {},
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));

  const datasetSel = select("run-dataset", datasets.map((d) => [d.dataset_id, `${d.name} (${d.rows} rows)`]), wanted || datasets[0].dataset_id);
  const taskSel = select("run-task", Object.keys(TASKS).map((k) => [k, k.replace("_", " ")]), "binclass");
  const labelSel = h("select#run-label", { required: true });
  const idSel = h("select#run-id-column");
  const tsSel = h("select#run-timestamp-column");
  const horizon = h("input#run-horizon", { type: "number", min: 1, value: 1, inputMode: "numeric" });
  const modelsBox = h("fieldset.checks#field-model_types", {},
    h("legend", {}, "Model types ", h("span.hint", {}, "(none checked: the server picks defaults)")),
    MODEL_TYPES.map((m) => h("label.check", {},
      h(`input#model-${m}`, { type: "checkbox", name: "model_types", value: m, checked: m === "xgboost" }), ` ${m}`)),
    h("p.field-error#model_types-error"));
  const metricsBox = h("fieldset.checks#field-metrics");
  const strategy = select("run-strategy", [["optuna", "optuna (TPE)"], ["random", "random"]], "optuna");
  const trials = h("input#run-trials", { type: "number", min: 1, max: 1000, value: 4, required: true, inputMode: "numeric" });
  const folds = h("input#run-folds", { type: "number", min: 2, max: 20, placeholder: "default", inputMode: "numeric" });
  const ensemble = h("input#run-ensemble", { type: "checkbox" });
  const grid = h("input#run-grid-size", { type: "number", min: 0, max: 1, step: "any", placeholder: "none", inputMode: "decimal" });
  const seed = h("input#run-seed", { type: "number", value: 42, inputMode: "numeric" });
  const timeLimit = h("input#run-time-limit", { type: "number", min: 1, max: 604800, step: "any", placeholder: "none", inputMode: "decimal" });
  const summary = h("div#run-errors", { role: "alert" });
  const submit = h("button", { type: "submit" }, "Start run");

  const seqFields = h("div.seq-fields", {},
    field("id_column", "ID column", idSel, "Identifies each series / sequence."),
    field("timestamp_column", "Timestamp column", tsSel),
    field("horizon", "Horizon (steps)", horizon, "Forecasting only."));

  function fillColumns() {
    const d = datasets.find((x) => x.dataset_id === datasetSel.value);
    const cols = (d?.columns || []).map((c) => [c.name, `${c.name} (${c.type})`]);
    for (const [sel, guess] of [[labelSel, /^(label|target|y|class)$/i], [idSel, /id$/i], [tsSel, /(time|date|ts)/i]]) {
      const prev = sel.value;
      sel.replaceChildren(...cols.map(([v, t]) => h("option", { value: v }, t)));
      const pick = cols.find(([v]) => v === prev) || cols.find(([v]) => guess.test(v)) || (sel === labelSel ? cols[cols.length - 1] : cols[0]);
      if (pick) sel.value = pick[0];
    }
  }
  function fillMetrics() {
    const kind = taskSel.value;
    const checked = new Set([...metricsBox.querySelectorAll("input:checked")].map((i) => i.value));
    metricsBox.replaceChildren(
      h("legend", {}, "Metrics ", h("span.hint", {}, "(first is the objective; none checked: the task's default)")),
      ...TASKS[kind].map((m) => h("label.check", {},
        h(`input#metric-${m}`, { type: "checkbox", name: "metrics", value: m, checked: checked.has(m) }), ` ${m}`)),
      h("p.field-error#metrics-error"));
    seqFields.hidden = !SEQUENTIAL(kind);
    f.horizon.closest(".field").hidden = kind !== "forecasting";
  }
  datasetSel.addEventListener("change", fillColumns);
  taskSel.addEventListener("change", fillMetrics);

  const form = h("form.card.run-form#run-form", {
    "aria-labelledby": "run-title",
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      clearErrors(form, summary);
      const body = buildBody();
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      try {
        const r = await api("/v1/trainer/run", { method: "POST", json: body, headers: { "Idempotency-Key": idempotencyKey() } });
        announce(`Run submitted: job ${r.job_id}`);
        location.hash = `#/jobs/${r.job_id}`;
      } catch (err) {
        showErrors(form, summary, err);
      } finally {
        submit.disabled = false;
        form.removeAttribute("aria-busy");
      }
    },
  },
    h("h2#run-title.visually-hidden", {}, "Run settings"),
    h("div.form-grid", {},
      field("dataset_id", "Dataset", datasetSel),
      field("task_kind", "Task", taskSel),
      field("label_column", "Label column", labelSel, "The column to predict."),
      field("strategy", "Search strategy", strategy),
      field("n_trials", "Trials per model", trials),
      field("n_splits", "Cross-validation folds", folds, "2–20; empty for the default."),
      field("grid_size", "Metric-weight grid size", grid, "With two or more metrics: sweep weights in steps of this size (e.g. 0.5) and get a Pareto front (ignored with one metric)."),
      field("random_state", "Random seed", seed),
      field("time_budget_s", "Time limit (s)", timeLimit, "Wall-clock seconds the whole job may take; trials per model becomes a cap. Empty: no limit."),
    ),
    seqFields,
    modelsBox,
    metricsBox,
    h("div.field.inline", {}, ensemble, h("label", { for: "run-ensemble" }, "Build a Caruana ensemble of the best trials")),
    summary,
    submit,
  );

  function buildBody() {
    const kind = taskSel.value;
    const task = { task_kind: kind, label_column: labelSel.value };
    if (SEQUENTIAL(kind)) {
      task.id_column = idSel.value;
      task.timestamp_column = tsSel.value;
    }
    if (kind === "forecasting") task.horizon = Number(horizon.value);
    const models = [...form.querySelectorAll("input[name=model_types]:checked")].map((i) => i.value);
    const metrics = [...form.querySelectorAll("input[name=metrics]:checked")].map((i) => i.value);
    const body = {
      dataset_id: datasetSel.value,
      task,
      model_types: models.length ? models : null,
      metrics: metrics.length ? metrics : null,
      strategy: strategy.value,
      n_trials: Number(trials.value),
      ensemble: ensemble.checked,
      random_state: Number(seed.value || 42),
    };
    if (folds.value) body.n_splits = Number(folds.value);
    if (grid.value) body.grid_size = Number(grid.value);
    if (timeLimit.value) body.time_budget_s = Number(timeLimit.value);
    return body;
  }

  root.append(form);
  fillColumns();
  fillMetrics();
  datasetSel.focus();
}

function clearErrors(form, summary) {
  summary.replaceChildren();
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showErrors(form, summary, err) {
  const detail = Array.isArray(err.detail) ? err.detail : null;
  const items = [];
  let first = null;
  for (const d of detail || []) {
    const loc = (d.loc || []).filter((x) => x !== "body" && typeof x === "string");
    const key = loc.includes("task") ? loc[loc.length - 1] : loc[0];
    const target = key && (form.querySelector(`#field-${CSS.escape(key)}`));
    if (target) {
      const msg = target.querySelector(".field-error");
      msg.textContent = d.msg;
      const control = target.querySelector("input, select");
      control?.setAttribute("aria-invalid", "true");
      first ??= control;
    }
    items.push(h("li", {}, `${loc.join(".") || "request"}: ${d.msg}`));
  }
  summary.replaceChildren(h("div.alert", {},
    h("p", {}, detail ? "The run was not accepted:" : `The run was not accepted: ${err.message}`),
    items.length ? h("ul", {}, items) : ""));
  (first || summary).focus?.();
}
