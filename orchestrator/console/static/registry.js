// The registry as the orchestrator sees it: agents, skills, health, observed success and latency per skill.
import { getJSON } from "/ui/api.js";
import { badge, fmt, h, table, when } from "/ui/dom.js";

function rate(stats) {
  return stats && stats.calls ? `${fmt((100 * stats.successes) / stats.calls, 1)}%` : "–";
}

function matches(agent, needle) {
  if (!needle) return true;
  const words = [agent.name, agent.id, agent.description, agent.status, agent.transport, (agent.model || {}).name,
    ...(agent.tags || []), ...(agent.skills || []).flatMap((sk) => [sk.id, sk.name, sk.description, ...(sk.tags || [])])];
  return words.some((w) => w && String(w).toLowerCase().includes(needle));
}

export async function renderRegistry(view, signal) {
  const search = h("input", { id: "registry-search", type: "search", placeholder: "search agents, skills, tags…" });
  const body = h("div", { id: "registry-table" });
  view.append(h("h1", {}, "Registry"), h("div", { class: "filters" }, search,
    h("span", { class: "muted" }, "observed statistics come from the calls the orchestrators report")), body);
  const { agents } = await getJSON("/agents");
  function paint() {
    const needle = search.value.trim().toLowerCase();
    const shown = agents.filter((a) => matches(a, needle));
    const rows = [];
    for (const a of shown) {
      const skills = a.skills || [];
      const statsOf = (id) => (a.stats && a.stats.skills && a.stats.skills[id]) || null;
      rows.push([h("b", {}, a.name), badge(a.status), a.transport, (a.model && a.model.name) || "–",
        `${a.stats ? a.stats.calls : 0} calls · ${rate(a.stats)} ok · p50 ${fmt(a.stats && a.stats.latency_p50_ms, 0)} ms`,
        when(a.last_heartbeat), h("table", {}, skills.map((sk) => {
          const st = statsOf(sk.id);
          return h("tr", { "data-skill": sk.id }, h("td", {}, h("code", {}, sk.id)),
            h("td", {}, st ? `${st.calls} calls` : "no calls"), h("td", {}, `${rate(st)} ok`),
            h("td", {}, `p50 ${fmt(st && st.latency_p50_ms, 0)} / p95 ${fmt(st && st.latency_p95_ms, 0)} ms`));
        }))]);
    }
    body.replaceChildren(shown.length ? table(
      ["agent", "health", "transport", "model", "observed (all skills)", "last heartbeat", "skills: calls, success, latency"],
      rows, (i) => ({ "data-agent": shown[i].name })) : h("p", { class: "muted" }, "No agent matches."));
  }
  search.addEventListener("input", paint);
  signal.addEventListener("abort", () => search.removeEventListener("input", paint));
  paint();
}
