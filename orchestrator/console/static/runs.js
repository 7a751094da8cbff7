// The runs list (filters) and a run's page: its task graph coloured by state and updated live, and a task panel
// with routing explanation, attempts, input, output, error and usage.
import { questionBox } from "/ui/answer.js";
import { approvalBox } from "/ui/approval.js";
import { followEvents, getJSON } from "/ui/api.js";
import { badge, fmt, h, json, table, when } from "/ui/dom.js";
import { drawGraph, edgesOf, setState } from "/ui/graph.js";
import { renderNegotiation } from "/ui/negotiation.js";

const STATUSES = ["", "pending", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["", "graph", "negotiation"];

function kindOf(run) {
  return run.kind || "graph";
}

export async function renderRuns(view, signal) {
  const status = h("select", { id: "filter-status", "aria-label": "status" },
    STATUSES.map((v) => h("option", { value: v }, v || "any status")));
  const kind = h("select", { id: "filter-kind", "aria-label": "kind" },
    KINDS.map((v) => h("option", { value: v }, v || "any kind")));
  const text = h("input", { id: "filter-text", type: "search", placeholder: "id or name contains…" });
  const body = h("div", { id: "runs-table" });
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  status.value = params.get("status") || "";
  kind.value = params.get("kind") || "";
  view.append(h("h1", {}, "Runs"), h("div", { class: "filters" }, status, kind, text,
    h("span", { class: "muted" }, "refreshes every 3 s")), body);

  async function load() {
    const query = new URLSearchParams({ limit: "200" });
    if (status.value) query.set("status", status.value);
    if (kind.value) query.set("kind", kind.value);
    const { runs } = await getJSON(`/runs?${query}`);
    const needle = text.value.trim().toLowerCase();
    const shown = runs.filter((r) => (!kind.value || kindOf(r) === kind.value)
      && (!needle || r.id.toLowerCase().includes(needle) || (r.name || "").toLowerCase().includes(needle)));
    body.replaceChildren(shown.length === 0 ? h("p", { class: "muted" }, "No runs match.") : table(
      ["run", "name", "kind", "status", "created", "finished", "error"],
      shown.map((r) => [h("a", { href: `#/runs/${encodeURIComponent(r.id)}` }, h("code", {}, r.id)), r.name || "",
        kindOf(r), badge(r.status), when(r.created_at), when(r.finished_at),
        h("span", { class: "error" }, (r.error || "").slice(0, 120))]),
      (i) => ({ class: "clickable", "data-run": shown[i].id,
        onclick: (e) => { if (e.target.tagName !== "A") location.hash = `#/runs/${encodeURIComponent(shown[i].id)}`; } }),
    ));
  }
  for (const input of [status, kind, text]) input.addEventListener("input", () => load().catch(showError));
  function showError(err) { body.replaceChildren(h("p", { class: "error" }, String(err.message || err))); }
  await load();
  const timer = setInterval(() => load().catch(showError), 3000);
  signal.addEventListener("abort", () => clearInterval(timer));
}

// The run's usage: as recorded at its end, else summed from its attempts so far.
function sumAttempts(attempts) {
  const u = { prompt_tokens: 0, completion_tokens: 0, wall_seconds: 0, cpu_seconds: 0, energy_joules: 0, attempts: 0 };
  for (const a of attempts || []) {
    for (const key of Object.keys(u)) if (typeof a[key] === "number") u[key] += a[key];
    u.attempts += 1;
  }
  return u;
}

function usageStats(record) {
  const tasks = record.tasks;
  const u = record.usage || sumAttempts(record.attempts);
  const done = tasks.filter((t) => ["succeeded", "failed", "skipped", "cancelled"].includes(t.status)).length;
  const tokens = (u.prompt_tokens || 0) + (u.completion_tokens || 0);
  return h("div", { class: "stats", id: "run-stats" },
    h("div", {}, h("b", { id: "stat-done" }, `${done}/${tasks.length}`), "tasks done"),
    h("div", {}, h("b", {}, fmt(tokens)), "tokens"),
    h("div", {}, h("b", {}, fmt(u.attempts || 0)), "attempts"),
    h("div", {}, h("b", {}, `${fmt(u.wall_seconds || 0, 3)} s`), "agent time"),
    h("div", {}, h("b", {}, `${fmt(u.cpu_seconds || 0, 3)} s`), "CPU"),
    h("div", {}, h("b", {}, `${fmt(u.energy_joules || 0, 2)} J`), "energy"));
}

function routingView(routing) {
  if (!routing) return h("p", { class: "muted" }, "Not routed yet.");
  const ranked = (routing.ranked || []).map((c, i) => [String(i + 1), c.name, c.skill, fmt(c.score, 3),
    Object.entries(c.parts || {}).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(", "), c.reason || ""]);
  const excluded = (routing.excluded || []).map((e) => [e.name, e.why]);
  return h("div", { id: "task-routing" },
    ranked.length ? table(["#", "agent", "skill", "score", "parts", "why"], ranked) : h("p", {}, "No candidate."),
    excluded.length ? [h("h3", {}, "Excluded"), table(["agent", "why"], excluded)] : null);
}

// Agent names by id, from the routing explanations (attempts and tasks store ids).
function agentNames(record) {
  const names = new Map();
  for (const t of record.tasks) for (const c of (t.routing && t.routing.ranked) || []) names.set(c.agent_id, c.name);
  return names;
}

// `questions`: task id -> the data of its latest task.waiting event (while it waits); `approvals`: task id -> the data
// of its open task.approval_requested event; `onAnswered` refreshes the page.
function taskPanel(record, taskId, questions, approvals, onAnswered) {
  const task = record.tasks.find((t) => t.task_id === taskId);
  if (!task) return h("p", { class: "muted" }, "Click a task in the graph.");
  const attempts = (record.attempts || []).filter((a) => a.task_id === taskId);
  const names = agentNames(record);
  const agent = (id) => (id ? names.get(id) || id : "–");
  return h("div", { "data-task-panel": taskId },
    h("h2", {}, "Task ", h("code", {}, taskId), " ", badge(task.status)),
    task.status === "waiting" && questions.has(taskId)
      ? questionBox(record.id, taskId, questions.get(taskId), onAnswered) : null,
    h("p", {}, "Agent: ", agent(task.agent_id), " · attempts: ", String(task.attempts),
      " · started ", when(task.started_at), " · finished ", when(task.finished_at)),
    task.error ? h("div", {}, h("h3", {}, "Error"), h("pre", { class: "error", id: "task-error" }, task.error)) : null,
    h("h3", {}, "Routing"), routingView(task.routing),
    h("h3", {}, "Attempts"),
    attempts.length ? table(["#", "agent", "skill", "status", "seconds", "tokens", "energy J", "error"],
      attempts.map((a) => [String(a.number), agent(a.agent_id), a.skill, badge(a.status), fmt(a.wall_seconds, 3),
        fmt(a.prompt_tokens + a.completion_tokens), fmt(a.energy_joules, 3),
        h("span", { class: "error" }, (a.error || "").slice(0, 200))])) : h("p", { class: "muted" }, "None yet."),
    h("h3", {}, "Input"), json(task.input),
    h("h3", {}, "Output"), task.status === "succeeded" ? h("div", { id: "task-output" }, json(task.output))
      : task.status === "waiting" && approvals.has(taskId)
        ? approvalBox(record.id, taskId, approvals.get(taskId), onAnswered) : h("p", { class: "muted" }, "No output."),
    task.usage ? [h("h3", {}, "Usage"), json(task.usage)] : null);
}

const EVENT_STATE = { "task.routed": "running", "attempt.started": "running", "task.succeeded": "succeeded",
  "task.failed": "failed", "task.skipped": "skipped", "task.waiting": "waiting", "task.answered": "running",
  "task.approval_requested": "waiting", "task.approved": "running", "task.rejected": "running" };

export async function renderRun(view, runId, signal) {
  let record = await getJSON(`/runs/${encodeURIComponent(runId)}`);
  if (record.kind === "negotiation" || record.tasks.length === 0) return renderNegotiation(view, record, signal);
  const ids = record.tasks.map((t) => t.task_id);
  const states = new Map(record.tasks.map((t) => [t.task_id, t.status]));
  let selected = ids.find((id) => states.get(id) === "waiting") || ids.find((id) => states.get(id) === "failed") || ids[0];
  const status = h("span", { id: "run-status" }, badge(record.status));
  const stats = h("div", {}, usageStats(record));
  const panel = h("div", { class: "panel", id: "task-panel" });
  const log = h("tbody", {});
  const graph = drawGraph(ids, edgesOf(record.spec, ids), states, (id) => { selected = id; paint(); });
  const errorLine = h("p", { class: "error", id: "run-error" }, record.error || "");
  const questions = new Map(); // task id -> its open question, from the task.waiting events
  const approvals = new Map(); // task id -> its output held for approval, from the task.approval_requested events
  const banner = h("div", { id: "waiting-banner" });
  view.append(
    h("p", {}, h("a", { href: "#/runs" }, "← runs")),
    h("h1", {}, record.name || "run", " ", h("code", {}, record.id), " ", status),
    h("p", { class: "muted" }, `graph run · created ${when(record.created_at)} · owner ${record.owner || "local"}`),
    errorLine, banner, stats,
    h("div", { class: "cols" },
      h("div", {}, h("h2", {}, "Task graph"), graph,
        h("h2", {}, "Events"), h("div", { class: "events" }, h("table", {}, log))),
      panel));

  let answered = false; // an answer was just sent: the next refresh repaints the panel even while it is open
  function paint() {
    for (const node of graph.querySelectorAll(".node")) node.classList.toggle("selected", node.dataset.task === selected);
    const waitingOn = (open, text) => {
      const tasks = record.tasks.filter((t) => t.status === "waiting" && open.has(t.task_id));
      return tasks.length ? [h("p", { class: "waiting-banner" }, text,
        tasks.map((t) => h("a", { href: "#", "data-waiting": t.task_id,
          onclick: (e) => { e.preventDefault(); selected = t.task_id; paint(); } }, t.task_id)))] : [];
    };
    banner.replaceChildren(...waitingOn(questions, "Waiting for an answer: "),
      ...waitingOn(approvals, "Waiting for approval: "));
    // keep a half-filled answer form: repaint the panel only when its task's state or question changed
    const key = `${selected}|${(record.tasks.find((t) => t.task_id === selected) || {}).status}|${JSON.stringify(questions.get(selected) || null)}|${JSON.stringify(approvals.get(selected) || null)}`;
    if (panel.dataset.key === key && panel.querySelector("#answer-form, #task-approval") && !answered) return;
    answered = false;
    panel.dataset.key = key;
    panel.replaceChildren(taskPanel(record, selected, questions, approvals, () => { answered = true; schedule(); }));
  }
  let pending = null;
  async function refresh() {
    pending = null;
    record = await getJSON(`/runs/${encodeURIComponent(runId)}`);
    for (const t of record.tasks) {
      const shown = states.get(t.task_id);
      // the stored status wins, except that a task the events showed running stays so until it is stored ended
      if (!(t.status === "pending" && shown === "running")) { states.set(t.task_id, t.status); setState(graph, t.task_id, t.status); }
    }
    status.replaceChildren(badge(record.status));
    stats.replaceChildren(usageStats(record));
    errorLine.textContent = record.error || "";
    paint();
  }
  const schedule = () => { if (!pending && !signal.aborted) pending = setTimeout(() => refresh().catch(() => {}), 200); };
  paint();
  if (["succeeded", "failed", "cancelled"].includes(record.status)) {
    followEvents(runId, (e) => logEvent(log, e), signal).catch(() => {});
    return;
  }
  followEvents(runId, (event) => {
    logEvent(log, event);
    if (event.kind === "task.waiting") questions.set(event.task_id, event.data || {});
    else if (event.task_id && ["task.answered", "task.succeeded", "task.failed", "task.skipped"].includes(event.kind)) {
      questions.delete(event.task_id);
    }
    if (event.kind === "task.approval_requested") approvals.set(event.task_id, event.data || {});
    else if (event.task_id && ["task.approved", "task.rejected", "task.succeeded", "task.failed", "task.skipped"].includes(event.kind)) {
      approvals.delete(event.task_id);
    }
    const state = EVENT_STATE[event.kind];
    if (event.task_id && state) { states.set(event.task_id, state); setState(graph, event.task_id, state); }
    if (event.kind.startsWith("run.") || event.kind.startsWith("task.") || event.kind.startsWith("attempt.")) schedule();
  }, signal).then(() => refresh()).catch((err) => { errorLine.textContent = String(err.message || err); });
}

const MAX_LOG = 500; // event rows kept on the page (the newest)

function logEvent(log, event) {
  log.append(eventRow(event));
  if (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
}

function eventRow(event) {
  const d = event.data || {};
  const decided = { "task.approved": "approved", "task.rejected": "rejected" }[event.kind];
  const answer = decided ? `${d.by} ${decided}${d.comment ? `: ${d.comment}` : ""}`
    : event.kind === "task.approval_requested" ? `held for approval: ${JSON.stringify(d.output)}`
      : d.by && d.input !== undefined ? `${d.by} answered ${JSON.stringify(d.input)}` : "";
  const detail = d.error || d.question || answer || d.agent || (d.ranked ? `ranked ${d.ranked.join(", ")}` : "") || "";
  return h("tr", { "data-seq": event.seq }, h("td", {}, String(event.seq)), h("td", {}, event.kind),
    h("td", {}, event.task_id || ""), h("td", {}, String(detail).slice(0, 160)));
}
