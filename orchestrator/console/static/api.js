// Calls to the orchestrator API with the user's bearer token (kept in sessionStorage, sent as a header).
const TOKEN_KEY = "scaleout.console.token";

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(`HTTP ${status}${kind ? " " + kind : ""}: ${message}`);
    this.status = status;
    this.kind = kind;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const t = token();
  return Object.assign(t ? { Authorization: `Bearer ${t}` } : {}, extra || {});
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const error = body && body.error;
  const hint = response.status === 401 ? " (enter a token above)" : "";
  return new ApiError(response.status, error && error.type, ((error && error.message) || response.statusText) + hint);
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: headers({ Accept: "application/json" }) });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// POST a JSON body; the reply's JSON, or an ApiError carrying the API's one-line refusal.
export async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST", body: JSON.stringify(body),
    headers: headers({ Accept: "application/json", "Content-Type": "application/json" }),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

const TERMINAL = new Set(["run.succeeded", "run.failed", "run.cancelled"]);

// Follow a run's events (SSE read through fetch, so the token travels as a header); resumes after a dropped
// connection from the last seen id; stops at the run's last event or when `signal` aborts.
export async function followEvents(runId, onEvent, signal) {
  let last = 0;
  for (let failures = 0; failures < 6 && !signal.aborted;) {
    let response;
    try {
      response = await fetch(`/runs/${encodeURIComponent(runId)}/events?after=${last}`, {
        headers: headers({ Accept: "text/event-stream" }), signal, cache: "no-store",
      });
    } catch (err) {
      if (signal.aborted) return;
      failures += 1;
      await new Promise((r) => setTimeout(r, 250 * 2 ** failures));
      continue;
    }
    if (response.status === 503) { await new Promise((r) => setTimeout(r, 2000)); continue; }
    if (!response.ok) throw await failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (!data) continue;
          const event = JSON.parse(data);
          last = event.seq;
          failures = 0;
          onEvent(event);
          if (TERMINAL.has(event.kind)) return;
        }
      }
      return; // the server ended the stream: the run is over
    } catch (err) {
      if (signal.aborted) return;
      failures += 1;
    }
  }
}
