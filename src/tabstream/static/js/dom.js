// Tiny DOM helpers. Text always goes in as text nodes (never innerHTML): names and messages
// come from users and the log.

/** h("tag.class#id", {attrs}, ...children) -> Element. Attributes starting with "on" bind events. */
export function h(spec, attrs = {}, ...children) {
  const [, tag = "div", rest = ""] = spec.match(/^([a-z0-9-]*)(.*)$/i);
  const el = document.createElement(tag || "div");
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A table with a caption, column headers (scope=col) and rows of cells. */
export function table(caption, headers, rows, { className = "", empty = "Nothing yet." } = {}) {
  const t = h(`table${className ? "." + className : ""}`, {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.length
      ? rows.map((cells) => h("tr", {}, cells.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))
      : h("tr", {}, h("td", { colSpan: headers.length, class: "empty" }, empty))),
  );
  // A focusable, labelled scroll region so wide tables work on narrow screens and by keyboard.
  return h("div.table-wrap", { role: "region", "aria-label": caption, tabindex: "0" }, t);
}

export function fmtNum(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  return Number(value.toPrecision(digits)).toString();
}

export function fmtTime(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function timeEl(value) {
  return value ? h("time", { datetime: value }, fmtTime(value)) : "—";
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  // Non-breaking spaces: a duration never wraps inside a table cell.
  if (seconds < 60) return `${seconds.toFixed(1)}\u00a0s`;
  const m = Math.floor(seconds / 60);
  return `${m}\u00a0min ${Math.round(seconds - m * 60)}\u00a0s`;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

export function metricsText(metrics) {
  return Object.entries(metrics || {}).map(([k, v]) => `${k} ${fmtNum(v)}`).join(", ") || "—";
}

export function statusBadge(status) {
  return h(`span.badge.status-${status}`, {}, status);
}

export function announce(text) {
  const el = document.getElementById("announcer");
  el.textContent = "";
  // A fresh text node on the next frame makes screen readers announce repeats too.
  requestAnimationFrame(() => {
    el.textContent = text;
  });
}

export function errorBox(err) {
  return h("div.alert", { role: "alert" }, err instanceof Error ? err.message : String(err));
}
