// A task graph drawn as inline SVG: tasks placed in columns by dependency depth, edges from producer to consumer.
import { h, s } from "/ui/dom.js";

export const MAX_DRAWN = 400; // larger graphs are listed, not drawn (an SVG of thousands of nodes helps nobody)
const W = 150, H = 34, GAP_X = 60, GAP_Y = 18, PAD = 16;

function refsIn(value, found) {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, found));
  else if (value && typeof value === "object") {
    if (typeof value.$ref === "string") found.add(value.$ref.split(".")[0]);
    else Object.values(value).forEach((v) => refsIn(v, found));
  }
  return found;
}

// Edges [from, to] of a run's spec: $ref inputs and explicit `after` lists.
export function edgesOf(spec, taskIds) {
  const known = new Set(taskIds);
  const edges = [];
  for (const task of (spec && spec.tasks) || []) {
    for (const from of refsIn(task.input, new Set())) if (known.has(from)) edges.push([from, task.id || "task"]);
  }
  for (const [to, froms] of Object.entries((spec && spec.after) || {})) {
    for (const from of froms) if (known.has(from) && known.has(to)) edges.push([from, to]);
  }
  return edges;
}

export function layout(taskIds, edges) {
  const preds = new Map(taskIds.map((id) => [id, []]));
  for (const [from, to] of edges) preds.get(to).push(from);
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...preds.get(id).map((p) => depthOf(p, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const id of taskIds) (columns[depthOf(id)] ||= []).push(id);
  const where = new Map();
  columns.forEach((ids, col) => ids.forEach((id, row) => {
    where.set(id, { x: PAD + col * (W + GAP_X), y: PAD + row * (H + GAP_Y) });
  }));
  const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GAP_Y) - GAP_Y;
  return { where, width, height };
}

// The graph as an <svg>; `states` maps task id to state; `onSelect(taskId)` on a click. Past MAX_DRAWN tasks, a
// list of tasks with the same attributes instead.
export function drawGraph(taskIds, edges, states, onSelect) {
  if (taskIds.length > MAX_DRAWN) return listTasks(taskIds, states, onSelect);
  const { where, width, height } = layout(taskIds, edges);
  const svg = s("svg", { id: "task-graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "task graph" });
  for (const [from, to] of edges) {
    const a = where.get(from), b = where.get(to);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
    svg.append(s("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` }));
  }
  for (const id of taskIds) {
    const { x, y } = where.get(id);
    const label = id.length > 20 ? id.slice(0, 19) + "…" : id;
    const node = s("g", { class: "node", "data-task": id, "data-state": states.get(id) || "pending",
      tabindex: 0, onclick: () => onSelect(id), onkeydown: (e) => { if (e.key === "Enter") onSelect(id); } },
      s("title", {}, id),
      s("rect", { x, y, width: W, height: H, rx: 5 }),
      s("text", { x: x + 8, y: y + H / 2 + 4 }, label));
    svg.append(node);
  }
  return svg;
}

function listTasks(taskIds, states, onSelect) {
  return h("div", { id: "task-graph", class: "task-list" },
    h("p", { class: "muted" }, `${taskIds.length} tasks: too many to draw; click one for its panel.`),
    h("table", {}, h("tbody", {}, taskIds.map((id) => h("tr", { class: "node clickable", "data-task": id,
      "data-state": states.get(id) || "pending", onclick: () => onSelect(id) },
    h("td", {}, h("code", {}, id)), h("td", { class: "state" }, states.get(id) || "pending"))))));
}

export function setState(graph, taskId, state) {
  const node = graph.querySelector(`.node[data-task="${CSS.escape(taskId)}"]`);
  if (!node) return;
  node.setAttribute("data-state", state);
  const cell = node.querySelector("td.state");
  if (cell) cell.textContent = state;
}
