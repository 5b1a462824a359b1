// The API client: bearer auth kept in sessionStorage, JSON calls, and SSE over fetch.
//
// EventSource cannot send an Authorization header, so live job events are read with fetch()
// streaming and parsed here (text/event-stream: "id:", "event:", "data:" lines, blank line ends
// an event, lines starting with ":" are comments / heartbeats).

const KEY = "tabstream.session";
const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

function describe(status, detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

// -- session ---------------------------------------------------------------------------------

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(KEY, JSON.stringify(value));
  },
  clear(reason) {
    sessionStorage.removeItem(KEY);
    window.dispatchEvent(new CustomEvent("tabstream:signed-out", { detail: reason || "" }));
  },
};

/** Sign in with a static API token (exchanged for a short-lived JWT) or an access JWT. */
export async function signIn(token) {
  token = token.trim();
  const exchange = await fetch("/v1/auth/token", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  if (exchange.ok) {
    const pair = await exchange.json();
    session.set({
      access: pair.access_token,
      refresh: pair.refresh_token,
      expiresAt: Date.now() + pair.expires_in * 1000,
    });
    return;
  }
  // Not a static token: it may be an access JWT already. Check it against a cheap read.
  const probe = await fetch("/v1/jobs?limit=1", { headers: { Authorization: `Bearer ${token}` } });
  if (!probe.ok) throw new ApiError(probe.status, "that token was not accepted");
  session.set({ access: token, refresh: null, expiresAt: null });
}

let refreshing = null;

async function accessToken() {
  const s = session.get();
  if (!s) throw new ApiError(401, "not signed in");
  if (s.refresh && s.expiresAt && Date.now() > s.expiresAt - REFRESH_MARGIN_MS) {
    // One refresh at a time: a spent refresh token reused would revoke the whole session.
    refreshing ??= rotate(s.refresh).finally(() => {
      refreshing = null;
    });
    await refreshing;
    return session.get().access;
  }
  return s.access;
}

async function rotate(refreshToken) {
  const r = await fetch("/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  if (!r.ok) {
    session.clear("Your session expired; sign in again.");
    throw new ApiError(401, "session expired");
  }
  const pair = await r.json();
  session.set({
    access: pair.access_token,
    refresh: pair.refresh_token,
    expiresAt: Date.now() + pair.expires_in * 1000,
  });
}

// -- JSON calls ------------------------------------------------------------------------------

/** Call the API; JSON in (``json``) or a FormData (``form``), JSON out. Throws ApiError. */
export async function api(path, { method = "GET", json, form, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { ...headers, Authorization: `Bearer ${await accessToken()}` } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const r = await fetch(path, init);
  if (r.status === 401) {
    session.clear("Your session is no longer valid; sign in again.");
    throw new ApiError(401, "unauthorized");
  }
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!r.ok) throw new ApiError(r.status, body && body.detail !== undefined ? body.detail : body);
  return body;
}

// -- server-sent events ----------------------------------------------------------------------

/** Parse a text/event-stream body into {id, event, data} objects (an async generator). */
export async function* parseEventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { id: null, event: "message", data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an incomplete last line waits for more bytes
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) yield { id: event.id, event: event.event, data: event.data.join("\n") };
          event = { id: event.id, event: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") event.data.push(value);
        else if (field === "event") event.event = value;
        else if (field === "id") event.id = value;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Follow a job's events: history first, then live, reconnecting with Last-Event-ID until the
 * terminal event or ``signal`` aborts. ``onEvent(envelope, id)``; ``onState("live"|"retrying"|
 * "ended"|"failed")``. Resolves when the stream ends for good.
 */
export async function followJobEvents(jobId, { onEvent, onState = () => {}, signal, isTerminal }) {
  let lastId = 0;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const r = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: {
          Authorization: `Bearer ${await accessToken()}`,
          Accept: "text/event-stream",
          ...(lastId ? { "Last-Event-ID": String(lastId) } : {}),
        },
        signal,
      });
      if (r.status === 401) {
        session.clear("Your session is no longer valid; sign in again.");
        return;
      }
      if (!r.ok || !r.body) throw new ApiError(r.status, "event stream unavailable");
      onState("live");
      failures = 0;
      let ended = false;
      for await (const message of parseEventStream(r.body)) {
        const envelope = JSON.parse(message.data);
        lastId = Number(message.id) || lastId + 1;
        onEvent(envelope, lastId);
        if (isTerminal(envelope)) ended = true;
      }
      if (ended) {
        onState("ended");
        return;
      }
    } catch (err) {
      if (signal.aborted) return;
      failures += 1;
      if (failures > 5) {
        onState("failed", err);
        return;
      }
    }
    onState("retrying");
    await sleep(Math.min(1000 * 2 ** failures, 10_000), signal);
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
