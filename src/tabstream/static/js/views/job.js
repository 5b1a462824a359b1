// One job, live: progress from the SSE stream, trials, optimisation history per matrix row,
// leaderboard, ensemble weights, Pareto front and the event timeline.

import { ApiError, api, followJobEvents, sleep } from "../api.js";
import { better, historyChart, paretoChart } from "../charts.js";
import {
  announce,
  errorBox,
  fmtDuration,
  fmtNum,
  h,
  metricsText,
  shortId,
  statusBadge,
  table,
  timeEl,
} from "../dom.js";

const TERMINAL = new Set(["JobCompleted", "JobFailed", "JobCancelled"]);
const TERMINAL_STATUS = new Set(["completed", "failed", "cancelled"]);

export async function jobView(root, { id, signal }) {
  const state = {
    job: await api(`/v1/jobs/${id}`, { signal }),
    trials: new Map(),
    events: [],
    stream: "connecting",
    pareto: null, // chosen [x, y] metrics
  };
  const trials = await api(`/v1/jobs/${id}/trials`, { signal });
  for (const t of trials.items) state.trials.set(`${t.row}:${t.trial}`, t);

  const sections = {
    head: h("div.page-head"),
    summary: h("section.card#summary", { "aria-labelledby": "summary-title" }),
    progress: h("section.card#progress", { "aria-labelledby": "progress-title" }),
    history: h("section.card#history", { "aria-labelledby": "history-title" }),
    leaderboard: h("section.card#leaderboard", { "aria-labelledby": "leaderboard-title" }),
    ensemble: h("section.card#ensemble", { "aria-labelledby": "ensemble-title" }),
    pareto: h("section.card#pareto", { "aria-labelledby": "pareto-title" }),
    trials: h("section.card#trials", { "aria-labelledby": "trials-title" }),
    timeline: h("section.card#timeline", { "aria-labelledby": "timeline-title" }),
  };
  // The progress text is a live region of its own: screen readers hear each trial finish.
  const progressText = h("p#progress-text", { "aria-live": "polite", "aria-atomic": "true" });
  const progressBar = h("progress#progress-bar", { max: 1, value: 0, "aria-labelledby": "progress-title" });
  const streamState = h("p.hint#stream-state");
  sections.progress.append(h("h2#progress-title", {}, "Progress"), progressBar, progressText, streamState);
  const timelineList = h("ol.timeline#timeline-list");
  sections.timeline.append(
    h("h2#timeline-title", {}, "Events"),
    h("div.scroll", { role: "region", "aria-label": "Event timeline", tabindex: "0" }, timelineList),
  );
  root.append(
    sections.head,
    h("div.grid", {}, sections.summary, sections.progress),
    sections.history,
    h("div.grid", {}, sections.leaderboard, sections.ensemble),
    sections.pareto,
    sections.trials,
    sections.timeline,
  );

  let scheduled = false;
  const renderSoon = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      if (!signal.aborted) render(state, sections, { progressText, progressBar, streamState });
    });
  };
  render(state, sections, { progressText, progressBar, streamState });

  const refresh = async () => {
    state.job = await api(`/v1/jobs/${id}`, { signal });
    const fresh = await api(`/v1/jobs/${id}/trials`, { signal });
    for (const t of fresh.items) state.trials.set(`${t.row}:${t.trial}`, t);
    renderSoon();
  };

  await followJobEvents(id, {
    signal,
    isTerminal: (env) => TERMINAL.has(env.type),
    onState: (s) => {
      state.stream = s;
      renderSoon();
    },
    onEvent: (env) => {
      state.events.push(env);
      timelineList.append(timelineItem(env));
      applyEvent(state, env);
      if (TERMINAL.has(env.type)) {
        announce(`Job ${shortId(id)} ${env.type.replace("Job", "").toLowerCase()}`);
        // The projection folds the terminal event right after it is on the log.
        waitFolded(refresh, state, signal);
      }
      renderSoon();
    },
  });
  // The stream gave up (or the job was already over): poll until the job is terminal.
  while (!signal.aborted && !TERMINAL_STATUS.has(state.job.status)) {
    await sleep(2000, signal);
    if (!signal.aborted) await refresh().catch(() => {});
  }
}

async function waitFolded(refresh, state, signal) {
  for (let i = 0; i < 40 && !signal.aborted; i++) {
    try {
      await refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
    }
    if (TERMINAL_STATUS.has(state.job.status)) return;
    await sleep(250, signal);
  }
}

function applyEvent(state, env) {
  const p = env.payload || {};
  const job = state.job;
  job.progress ??= { trials_done: 0, trials_total: null };
  if (env.type === "JobStarted") {
    job.progress.trials_total = p.trials_total;
    job.model_types = p.model_types;
    if (!TERMINAL_STATUS.has(job.status)) job.status = "running";
    job.started_at ??= env.occurred_at;
  } else if (env.type === "TrialCompleted") {
    const { type, job_id, ...trial } = p;
    state.trials.set(`${p.row}:${p.trial}`, { ...trial, completed_at: env.occurred_at });
  } else if (env.type === "JobCompleted") {
    Object.assign(job, {
      status: "completed",
      leaderboard: p.leaderboard,
      ensemble: p.ensemble,
      pareto_front: p.pareto_front,
      duration_s: p.duration_s,
      best_model_id: p.best_model_id,
      finished_at: env.occurred_at,
    });
  } else if (env.type === "JobFailed") {
    Object.assign(job, { status: "failed", error: { reason: p.reason, message: p.error }, finished_at: env.occurred_at });
  } else if (env.type === "JobCancelled") {
    Object.assign(job, { status: "cancelled", finished_at: env.occurred_at });
  }
  job.progress.trials_done = Math.max(job.progress.trials_done || 0, state.trials.size);
}

function render(state, sections, live) {
  const { job } = state;
  const request = job.request || {};
  const task = request.task || {};
  const cancel = TERMINAL_STATUS.has(job.status)
    ? null
    : h("button.danger", {
      type: "button",
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api(`/v1/jobs/${job.job_id}/cancel`, { method: "POST" });
          announce("Cancellation requested");
        } catch (err) {
          announce(`Cancel failed: ${err.message}`);
          e.target.disabled = false;
        }
      },
    }, "Cancel job");
  sections.head.replaceChildren(
    h("h1", {}, "Job ", h("span.mono", {}, shortId(job.job_id)), " ", statusBadge(job.status)),
    cancel || "",
  );

  const err = job.error
    ? h("div.alert", { role: "alert" }, typeof job.error === "object" ? `${job.error.reason}: ${job.error.message}` : String(job.error))
    : null;
  sections.summary.replaceChildren(
    h("h2#summary-title", {}, "Summary"),
    h("dl.facts", {},
      fact("Job ID", h("span.mono", {}, job.job_id)),
      fact("Dataset", h("span.mono", {}, job.dataset_id || "—")),
      fact("Task", task.task_kind ? `${task.task_kind} · label ${task.label_column}` : "—"),
      fact("Models", (job.model_types || request.model_types || ["default"]).join(", ")),
      fact("Metrics", (request.metrics || ["default"]).join(", ")),
      fact("Trials × folds", `${request.n_trials ?? "—"} × ${request.n_splits ?? "default"}`),
      request.grid_size ? fact("Grid size", String(request.grid_size)) : null,
      fact("Ensemble", request.ensemble ? "yes" : "no"),
      fact("Pool", job.pool || "—"),
      fact("Created", timeEl(job.created_at)),
      fact("Finished", timeEl(job.finished_at)),
      fact("Duration", fmtDuration(job.duration_s)),
      fact("Attempts", String((job.attempts || []).length)),
    ),
    err || "",
  );

  // Progress
  const done = job.progress?.trials_done ?? state.trials.size;
  const total = job.progress?.trials_total;
  const scores = [...state.trials.values()].filter((t) => t.state === "complete" && Number.isFinite(t.score)).map((t) => t.score);
  const best = scores.length ? Math.max(...scores) : null;
  live.progressBar.max = total || 1;
  live.progressBar.value = TERMINAL_STATUS.has(job.status) && !total ? 1 : Math.min(done, total || 0);
  const text = `${job.status}: ${done} of ${total ?? "?"} trials done${best !== null ? `; best score ${fmtNum(best)}` : ""}.`;
  if (live.progressText.textContent !== text) live.progressText.textContent = text;
  live.streamState.textContent = {
    connecting: "Connecting to the live event stream…",
    live: "Live: updates arrive as the job runs.",
    retrying: "Event stream interrupted; reconnecting…",
    ended: "The job is finished; showing its full history.",
    failed: "Live stream unavailable; refreshing every 2 s.",
  }[state.stream] || "";

  // Optimisation history: one chart per matrix row.
  const byRow = new Map();
  for (const t of state.trials.values()) {
    if (!byRow.has(t.row)) byRow.set(t.row, []);
    byRow.get(t.row).push(t);
  }
  const rows = [...byRow.entries()].sort((a, b) => a[0] - b[0]);
  sections.history.replaceChildren(
    h("h2#history-title", {}, "Optimisation history"),
    h("p.hint", {}, "Per matrix row: each trial's cross-validated score (dots, higher is better), failed trials (crosses) and the best score so far (line)."),
    rows.length
      ? h("div.charts", {}, rows.map(([row, ts]) => h("figure.chart-box", { dataset: { row } },
        historyChart(ts, rowLabel(row, ts[0])),
        h("figcaption", {}, rowLabel(row, ts[0])))))
      : h("p.empty", {}, "No trials yet."),
  );

  // Leaderboard
  const lb = job.leaderboard || [];
  sections.leaderboard.replaceChildren(
    h("h2#leaderboard-title", {}, "Leaderboard"),
    lb.length
      ? table("Best trial of each matrix row, best first", ["Rank", "Model", "Score", "Metrics", "Model ID"],
        lb.map((e, i) => [
          String(i + 1),
          rowLabel(e.row, e),
          fmtNum(e.score),
          metricsText(e.metrics),
          e.model_id ? h("span.mono", { title: e.model_id }, shortId(e.model_id)) : "—",
        ]), { className: "leaderboard" })
      : h("p.empty", {}, TERMINAL_STATUS.has(job.status) ? "No leaderboard." : "Appears when the job completes."),
  );

  // Ensemble weights
  const ens = job.ensemble;
  sections.ensemble.replaceChildren(
    h("h2#ensemble-title", {}, "Ensemble"),
    ens && ens.members?.length
      ? h("div", {},
        h("ul.weights", {}, ens.members.map((m) => h("li", {},
          h("span.weight-label", {}, `${m.family} (row ${m.row}, trial ${m.trial})`),
          h("meter", { min: 0, max: 1, value: m.weight, "aria-label": `weight of ${m.family} row ${m.row}` }),
          h("span.weight-value", {}, fmtNum(m.weight, 3))))),
        h("p", {}, "Out-of-fold: ", metricsText(ens.metrics)))
      : h("p.empty", {}, request.ensemble ? "Appears when the job completes." : "Not requested for this run."),
  );

  // Pareto front (multi-metric runs)
  renderPareto(state, sections.pareto);

  // Trials table
  const all = [...state.trials.values()].sort((a, b) => a.row - b.row || a.trial - b.trial);
  sections.trials.replaceChildren(
    h("h2#trials-title", {}, `Trials (${all.length})`),
    table("Every trial: parameters, metrics and timings", ["Row · trial", "Model", "State", "Score", "Metrics", "Fit", "Device", "Parameters"],
      all.map((t) => [
        `${t.row} · ${t.trial}`,
        rowLabel(t.row, t),
        h(`span.badge.state-${t.state}`, { title: t.error || "" }, t.state),
        fmtNum(t.score),
        metricsText(t.metrics),
        fmtDuration(t.fit_seconds),
        t.device || "—",
        h("code.params", {}, paramsText(t.params)),
      ]), { className: "trials", empty: "No trials yet." }),
  );
}

function renderPareto(state, section) {
  const { job } = state;
  const metrics = job.request?.metrics || [];
  const front = job.pareto_front || [];
  if (metrics.length < 2 && !front.length) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const names = metrics.length >= 2 ? metrics : Object.keys(front[0]?.metrics || {});
  state.pareto ??= [names[0], names[1]];
  const [xm, ym] = state.pareto;
  const pick = (axis, idx) => h("span.axis-pick", {},
    h("label", { for: `pareto-${axis}` }, `${axis.toUpperCase()} axis`),
    h(`select#pareto-${axis}`, {
      onchange: (e) => {
        state.pareto[idx] = e.target.value;
        renderPareto(state, section);
      },
    }, names.map((n) => h("option", { value: n, selected: n === state.pareto[idx] }, n))));
  const inFront = new Set(front.map((p) => p.row));
  const others = (job.leaderboard || []).filter((e) => !inFront.has(e.row));
  section.replaceChildren(
    h("h2#pareto-title", {}, "Pareto front"),
    front.length
      ? h("div", {},
        names.length > 2 ? h("div.toolbar", {}, pick("x", 0), pick("y", 1)) : "",
        h("figure.chart-box", {}, paretoChart(front, others, xm, ym),
          h("figcaption", {}, `Non-dominated rows of the metric-weight sweep (filled); other rows hollow. ${xm}: ${better(xm)}; ${ym}: ${better(ym)}.`)),
        table("Pareto-optimal rows", ["Row", "Model", "Metrics"], front.map((p) => [String(p.row), rowLabel(p.row, p), metricsText(p.metrics)]), { className: "pareto" }))
      : h("p.empty", {}, "Appears when the job completes."),
  );
}

function rowLabel(row, entry) {
  const w = entry?.weights;
  return `${entry?.family ?? "row"} #${row}${w ? ` (weights ${w.map((x) => fmtNum(x, 2)).join("/")})` : ""}`;
}

function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k}=${typeof v === "number" ? fmtNum(v, 3) : v}`).join(" ");
}

function fact(term, value) {
  return [h("dt", {}, term), h("dd", {}, value)];
}

function timelineItem(env) {
  const p = env.payload || {};
  let detail = "";
  switch (env.type) {
    case "RunRequested": detail = `pool ${p.pool}`; break;
    case "JobStarted": detail = `attempt ${p.attempt} on ${p.worker} (${p.device}), ${p.trials_total} trials`; break;
    case "TrialCompleted": detail = `${p.family} row ${p.row} trial ${p.trial}: ${p.state}${p.score !== null && p.score !== undefined ? `, score ${fmtNum(p.score)}` : ""}`; break;
    case "RowCompleted": detail = `${p.family} row ${p.row}: best score ${fmtNum(p.score)} (${p.n_trials} trials, ${p.n_failed} failed)`; break;
    case "ModelRegistered": detail = `${p.kind} model ${shortId(p.model_id)} (${(p.families || []).join(", ")})`; break;
    case "JobCompleted": detail = `in ${fmtDuration(p.duration_s)}`; break;
    case "JobFailed": detail = `${p.reason}: ${p.error}`; break;
    case "JobCancelled": detail = p.reason || ""; break;
    case "JobInterrupted": detail = `attempt ${p.lost_attempt} lost: ${p.reason}`; break;
    case "CancelRequested": detail = p.reason || ""; break;
    default: detail = "";
  }
  return h(`li.ev-${env.type}`, {},
    h("time", { datetime: env.occurred_at }, new Date(env.occurred_at).toLocaleTimeString()),
    " ", h("strong", {}, env.type), detail ? ` — ${detail}` : "");
}
