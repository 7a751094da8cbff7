// A negotiation run's page, built from its events: offers by round (who offered what, the model's moves, the
// guardrail's overrulings), the utility space with the Pareto frontier, agreement and Nash point, bids, awards.
import { followEvents, getJSON } from "/ui/api.js";
import { badge, fmt, h, json, s, table, when } from "/ui/dom.js";

const SIZE = 420, PAD = 46;

function offerText(offer) {
  return Object.entries(offer || {}).map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : JSON.stringify(v)}`)
    .join(", ");
}

// The utility space of a two-party negotiation as SVG: x = first party's utility, y = second party's.
export function utilityChart(started, offers, ended) {
  const order = (ended && ended.parties_order && ended.parties_order.length === 2) ? ended.parties_order
    : ((started && started.parties) || []).slice(0, 2).map((p) => p.name);
  const [a, b] = order;
  const px = (u) => PAD + u * (SIZE - 2 * PAD);
  const py = (u) => SIZE - PAD - u * (SIZE - 2 * PAD);
  const svg = s("svg", { id: "utility-chart", width: SIZE, height: SIZE, viewBox: `0 0 ${SIZE} ${SIZE}`, role: "img",
    "aria-label": `utility space of ${a} and ${b}` });
  for (let i = 0; i <= 4; i++) {
    const v = i / 4;
    svg.append(s("line", { class: "grid", x1: px(0), x2: px(1), y1: py(v), y2: py(v) }),
      s("line", { class: "grid", x1: px(v), x2: px(v), y1: py(0), y2: py(1) }),
      s("text", { x: px(v) - 8, y: SIZE - PAD + 16 }, v.toFixed(2)),
      s("text", { x: 6, y: py(v) + 4 }, v.toFixed(2)));
  }
  svg.append(s("line", { class: "axis", x1: px(0), x2: px(1), y1: py(0), y2: py(0) }),
    s("line", { class: "axis", x1: px(0), x2: px(0), y1: py(0), y2: py(1) }),
    s("text", { x: px(0.5) - 40, y: SIZE - 8 }, `utility of ${a || "?"}`),
    s("text", { x: 4, y: 16 }, `utility of ${b || "?"}`));
  const pareto = ((ended && ended.pareto) || []).slice().sort((p, q) => p[0] - q[0]);
  if (pareto.length) {
    svg.append(s("polyline", { class: "pareto", id: "pareto-frontier",
      points: pareto.map(([x, y]) => `${px(x)},${py(y)}`).join(" ") }, s("title", {}, "Pareto frontier")));
  }
  for (const o of offers) {
    const u = o.utilities || {};
    if (u[a] === undefined || u[b] === undefined) continue;
    svg.append(s("circle", { class: o.sender === a ? "offer-a" : "offer-b", cx: px(u[a]), cy: py(u[b]), r: 4 },
      s("title", {}, `round ${o.round}: ${o.sender} offers ${offerText(o.offer)}`)));
  }
  const mark = (id, cls, utilities, label, shape) => {
    if (!utilities || utilities[a] === undefined || utilities[b] === undefined) return;
    const x = px(utilities[a]), y = py(utilities[b]);
    // the Nash label above right, the agreement's below left: the two points are often close
    svg.append(shape === "ring" ? s("circle", { id, class: cls, cx: x, cy: y, r: 9 }, s("title", {}, label))
      : s("rect", { id, class: cls, x: x - 6, y: y - 6, width: 12, height: 12 }, s("title", {}, label)),
    shape === "ring" ? s("text", { x: x + 10, y: y - 10 }, label)
      : s("text", { x: x - 10, y: y + 20, "text-anchor": "end" }, label));
  };
  if (ended && ended.nash) mark("nash-point", "nash", ended.nash.utilities, "Nash", "ring");
  if (ended && ended.agreement) mark("agreement-point", "agreement", ended.utilities, "agreement", "square");
  return h("div", {}, svg, h("p", { class: "legend muted" },
    h("span", { class: "key-a" }, `● offers by ${a}`), h("span", { class: "key-b" }, `● offers by ${b}`),
    h("span", { class: "key-pareto" }, "— Pareto frontier"), h("span", { class: "key-agreement" }, "■ agreement"),
    h("span", { class: "key-nash" }, "○ Nash point")));
}

export async function renderNegotiation(view, record, signal) {
  const started = { value: null }, ended = { value: null };
  const offers = [], bids = [], awards = [];
  const status = h("span", { id: "run-status" }, badge(record.status));
  const body = h("div", { id: "negotiation" });
  view.append(h("p", {}, h("a", { href: "#/runs" }, "← runs")),
    h("h1", {}, record.name || "negotiation", " ", h("code", {}, record.id), " ", status),
    h("p", { class: "muted" }, `negotiation · created ${when(record.created_at)}`),
    h("p", { class: "error", id: "run-error" }, record.error || ""), body);

  function paint() {
    const st = started.value, end = ended.value;
    const parts = [];
    if (st) {
      parts.push(h("p", {}, `Protocol ${st.protocol} · parties `,
        (st.parties || []).map((p) => `${p.name} (${p.role}${p.agent_id ? ", " + p.agent_id : ""})`).join(", "),
        st.max_rounds ? ` · at most ${st.max_rounds} rounds` : "", st.deadline_s ? ` · deadline ${st.deadline_s} s` : ""));
      if ((st.issues || []).length) {
        parts.push(h("h2", {}, "Issues"), h("div", { id: "issues" }, table(["issue", "values", "unit"],
          st.issues.map((i) => [i.name, Array.isArray(i.values) ? i.values.join(", ") : JSON.stringify(i), i.unit || ""]))));
      }
    }
    if (end) {
      parts.push(h("h2", {}, "Outcome"), h("div", { class: "panel", id: "outcome" },
        h("p", {}, badge(end.outcome, end.outcome === "agreement" || end.outcome === "awarded" ? "succeeded" : "failed"),
          ` after ${end.rounds} rounds`),
        end.agreement ? h("p", { id: "agreement" }, "Agreement: ", h("code", {}, offerText(end.agreement))) : null,
        Object.keys(end.utilities || {}).length ? h("p", {}, "Utilities: ",
          Object.entries(end.utilities).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ")) : null,
        end.nash ? h("p", { id: "nash" }, "Nash point: ", h("code", {}, offerText(end.nash.offer)), " (",
          Object.entries(end.nash.utilities || {}).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", "), ")") : null));
    }
    if (offers.length) {
      const known = offers.some((o) => Object.keys(o.utilities || {}).length) || (end && (end.pareto || []).length);
      parts.push(h("h2", {}, "Utility space"), known ? utilityChart(st, offers, end)
        : h("p", { class: "muted", id: "no-utilities" }, "The parties' utilities are private to them (not given to the "
          + "orchestrator), so there is no utility space, Pareto frontier or Nash point to draw."));
      parts.push(h("h2", {}, "Offers by round"), h("div", { id: "offers" }, table(
        ["round", "from", "to", "offer", "utilities", "move", "response", "reason"],
        offers.map((o) => [String(o.round), o.sender, o.receiver, h("code", {}, offerText(o.offer)),
          Object.entries(o.utilities || {}).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", "),
          [badge(o.move), o.overruled ? [" ", badge("overruled")] : null], o.response || "", o.reason || ""]))));
    }
    if (bids.length) {
      parts.push(h("h2", {}, "Bids"), h("div", { id: "bids" }, table(
        ["round", "bidder", "item", "bid", "price", "valid", "reason"],
        bids.map((b) => [String(b.round), b.bidder, b.item, h("code", {}, JSON.stringify(b.bid)), fmt(b.price),
          b.valid ? "yes" : badge("invalid", "failed"), b.reason || ""]))));
    }
    if (awards.length) {
      parts.push(h("h2", {}, "Awards"), h("div", { id: "awards" }, table(["item", "winner", "price", "contract"],
        awards.map((a) => [a.item, a.winner || "none", fmt(a.price), a.contract ? json(a.contract) : "–"]))));
    }
    const u = record.usage;
    if (u) {
      parts.push(h("h2", {}, "Usage"), h("p", { id: "usage" }, `${u.attempts || 0} calls · `
        + `${(u.prompt_tokens || 0) + (u.completion_tokens || 0)} tokens · ${fmt(u.wall_seconds || 0, 3)} s agent time · `
        + `${fmt(u.energy_joules || 0, 2)} J`));
    }
    if (!parts.length) parts.push(h("p", { class: "muted" }, "No negotiation events yet."));
    body.replaceChildren(...parts);
  }
  paint();
  let queued = false;
  await followEvents(record.id, (event) => {
    const d = event.data || {};
    if (event.kind === "negotiation.started") started.value = d;
    else if (event.kind === "negotiation.offer") offers.push(d);
    else if (event.kind === "negotiation.bid") bids.push(d);
    else if (event.kind === "negotiation.award") awards.push(d);
    else if (event.kind === "negotiation.ended") ended.value = d;
    else if (event.kind.startsWith("run.") && event.kind !== "run.created" && event.kind !== "run.started") {
      status.replaceChildren(badge(event.kind.slice(4)));
    }
    if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; paint(); }); }
  }, signal);
  if (!signal.aborted) record = await getJSON(`/runs/${encodeURIComponent(record.id)}`);
  paint();
}
