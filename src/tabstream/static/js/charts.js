// Inline SVG charts: optimisation history (trial scores + best-so-far) and the Pareto front.

import { fmtNum } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 480;
const H = 240;
const PAD = { left: 78, right: 16, top: 14, bottom: 46 };

// Metric directions (mirror of tabstream.pipeline.search.scoring: greater_is_better).
const HIGHER_IS_BETTER = new Set(["auc", "accuracy", "neg_class_error", "f1", "r2"]);

export function better(metric) {
  return HIGHER_IS_BETTER.has(metric) ? "higher is better" : "lower is better";
}

function axisName(metric) {
  return `${metric} ${HIGHER_IS_BETTER.has(metric) ? "↑" : "↓"}`;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function domain(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) {
    const d = Math.abs(lo) * 0.05 || 0.5;
    return [lo - d, hi + d];
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

/** A tick label with just enough decimals to tell ticks ``span`` apart. */
function tick(v, span) {
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(span / 4))));
  return v.toFixed(decimals);
}

function scale([d0, d1], [r0, r1]) {
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

function frame(title, desc, xLabel, yLabel, xDom, yDom, x, y, xTicks) {
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-labelledby": "",
    class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  const id = `c${Math.random().toString(36).slice(2, 9)}`;
  svg.setAttribute("aria-labelledby", `${id}-t ${id}-d`);
  svg.append(s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, desc));
  const x0 = PAD.left;
  const x1 = W - PAD.right;
  const y0 = H - PAD.bottom;
  const y1 = PAD.top;
  const axes = s("g", { class: "axes" },
    s("line", { x1: x0, y1: y0, x2: x1, y2: y0 }),
    s("line", { x1: x0, y1: y0, x2: x0, y2: y1 }),
  );
  const yVals = [yDom[0], (yDom[0] + yDom[1]) / 2, yDom[1]];
  for (const v of yVals) {
    axes.append(
      s("line", { class: "grid", x1: x0, x2: x1, y1: y(v), y2: y(v) }),
      s("text", { x: x0 - 6, y: y(v) + 4, "text-anchor": "end" }, tick(v, yDom[1] - yDom[0])),
    );
  }
  for (const v of xTicks) {
    axes.append(s("text", { x: x(v), y: y0 + 18, "text-anchor": "middle" }, tick(v, xDom[1] - xDom[0])));
  }
  axes.append(
    s("text", { class: "axis-label", x: (x0 + x1) / 2, y: H - 6, "text-anchor": "middle" }, xLabel),
    s("text", {
      class: "axis-label",
      x: 0,
      y: 0,
      transform: `translate(14 ${(y0 + y1) / 2}) rotate(-90)`,
      "text-anchor": "middle",
    }, yLabel),
  );
  svg.append(axes);
  return svg;
}

/**
 * Optimisation history of one matrix row: every trial's score (points), failed trials (crosses
 * on the axis) and the best score so far (a step line). Scores are "higher is better".
 */
export function historyChart(trials, label) {
  const sorted = [...trials].sort((a, b) => a.trial - b.trial);
  const ok = sorted.filter((t) => t.state === "complete" && Number.isFinite(t.score));
  const failed = sorted.filter((t) => !(t.state === "complete" && Number.isFinite(t.score)));
  const trialNums = sorted.map((t) => t.trial);
  const xDom = trialNums.length ? [Math.min(...trialNums) - 0.5, Math.max(...trialNums) + 0.5] : [0, 1];
  const yDom = domain(ok.map((t) => t.score));
  const x = scale(xDom, [PAD.left, W - PAD.right]);
  const y = scale(yDom, [H - PAD.bottom, PAD.top]);
  let best = -Infinity;
  const bestPts = [];
  for (const t of ok) {
    best = Math.max(best, t.score);
    bestPts.push([x(t.trial), y(best)]);
  }
  const desc = ok.length
    ? `${ok.length} completed trial(s), ${failed.length} failed; best score ${fmtNum(best)}.`
    : `No completed trials yet (${failed.length} failed).`;
  const ticks = [...new Set([trialNums[0], trialNums[trialNums.length - 1]].filter((v) => v !== undefined))];
  const svg = frame(`Optimisation history: ${label}`, desc, "trial", "score ↑", xDom, yDom, x, y, ticks);
  if (bestPts.length) {
    const last = bestPts[bestPts.length - 1];
    let d = `M${bestPts[0][0]},${bestPts[0][1]}`;
    for (const [px, py] of bestPts.slice(1)) d += ` H${px} V${py}`;
    d += ` H${Math.max(last[0], x(xDom[1] - 0.5))}`;
    svg.append(s("path", { class: "best-line", d }));
  }
  const points = s("g", { class: "points" });
  for (const t of ok) {
    points.append(
      s("circle", { class: "trial-point", cx: x(t.trial), cy: y(t.score), r: 4.5 },
        s("title", {}, `trial ${t.trial}: score ${fmtNum(t.score)}`)),
    );
  }
  for (const t of failed) {
    const cx = x(t.trial);
    const cy = H - PAD.bottom - 6;
    points.append(
      s("path", { class: "trial-failed", d: `M${cx - 4},${cy - 4} L${cx + 4},${cy + 4} M${cx - 4},${cy + 4} L${cx + 4},${cy - 4}` },
        s("title", {}, `trial ${t.trial}: failed`)),
    );
  }
  svg.append(points);
  return svg;
}

/**
 * Pareto front of a multi-metric sweep on two metrics: front points joined by a line, the
 * other matrix rows as hollow points.
 */
export function paretoChart(front, others, xMetric, yMetric) {
  const has = (p) => Number.isFinite(p.metrics?.[xMetric]) && Number.isFinite(p.metrics?.[yMetric]);
  const f = front.filter(has);
  const o = others.filter(has);
  const all = [...f, ...o];
  const xDom = domain(all.map((p) => p.metrics[xMetric]));
  const yDom = domain(all.map((p) => p.metrics[yMetric]));
  const x = scale(xDom, [PAD.left, W - PAD.right]);
  const y = scale(yDom, [H - PAD.bottom, PAD.top]);
  const desc = `${f.length} non-dominated point(s) of ${all.length}; x: ${xMetric} (${better(xMetric)}), y: ${yMetric} (${better(yMetric)}).`;
  const svg = frame(`Pareto front: ${xMetric} vs ${yMetric}`, desc,
    axisName(xMetric), axisName(yMetric),
    xDom, yDom, x, y, [xDom[0] + (xDom[1] - xDom[0]) * 0.08, xDom[1] - (xDom[1] - xDom[0]) * 0.08]);
  const label = (p) => `${p.family}${p.weights ? ` w=[${p.weights.map((w) => fmtNum(w, 2)).join(", ")}]` : ""}: ${xMetric} ${fmtNum(p.metrics[xMetric])}, ${yMetric} ${fmtNum(p.metrics[yMetric])}`;
  const g = s("g", { class: "points" });
  for (const p of o) {
    g.append(s("circle", { class: "pareto-other", cx: x(p.metrics[xMetric]), cy: y(p.metrics[yMetric]), r: 4 }, s("title", {}, label(p))));
  }
  const line = [...f].sort((a, b) => a.metrics[xMetric] - b.metrics[xMetric]);
  if (line.length > 1) {
    svg.append(s("path", {
      class: "pareto-line",
      d: line.map((p, i) => `${i ? "L" : "M"}${x(p.metrics[xMetric])},${y(p.metrics[yMetric])}`).join(" "),
    }));
  }
  for (const p of f) {
    g.append(s("circle", { class: "pareto-point", cx: x(p.metrics[xMetric]), cy: y(p.metrics[yMetric]), r: 5.5 }, s("title", {}, label(p))));
  }
  svg.append(g);
  return svg;
}
