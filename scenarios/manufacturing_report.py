"""Readable report, JSON result and picture (offers over rounds, delivery Gantt chart) of a manufacturing run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenarios.manufacturing_result import ScenarioResult

__all__ = ["format_report", "write_outputs", "plot"]


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(result: ScenarioResult, ledger_lines: list[str] | None = None) -> str:
    """The run as plain text: sourcing, contracts, negotiations, schedule, per-agent cost; ``ledger_lines``
    (``ScenarioTrust.report_lines``: the ledger head and its verification) at the end."""
    c = result.config
    lines = [
        f"Smart manufacturing: {c['quantity']} x {c['product']} due day {c['due_day']} "
        f"({c['suppliers']} suppliers, {c['distributors']} distributors, brain={c['brain']}, "
        f"transport={c['transport']}, seed={c['seed']})",
        "",
        "Sourcing (contract net per component):",
    ]
    for s in result.components:
        lines.append(
            f"  {s.component:<11} qty {s.quantity:>6}  asked {s.asked:>4}  proposals {s.proposals:>4}  "
            f"refused {s.refusals:>3}  late {s.late}  -> {s.winner or 'NONE'} {s.note}"
        )
    lines += ["", "Contracts:"]
    for k in result.contracts:
        v = k.terms.values
        lines.append(
            f"  {k.item:<11} {k.seller:<14} {v['quantity']:>7.0f} @ {v['unit_price']:>7.2f} EUR  "
            f"day {v['delivery_day']:>3.0f}  late penalty {v['late_penalty']:g}%/day"
        )
    lines += ["", "Negotiations (utilities buyer/seller; distances in utility space):"]
    for n in result.negotiations:
        o = n.outcome
        u = [o.utilities.get(p) for p in o.parties]
        deal = "deal   " if o.agreement else "no deal"
        model = o.sources.get("model", 0)
        fallback, overruled = o.sources.get("fallback", 0), o.sources.get("guardrail", 0)
        lines.append(
            f"  {n.item:<11} {n.seller:<14} [{n.brain:>4}] {deal} rounds {o.rounds:>2}  "
            f"u {_f(u[0])}/{_f(u[1])}  welfare {_f(o.social_welfare)}  "
            f"pareto {_f(o.pareto_distance, 3)}  nash {_f(o.nash_distance, 3)}"
            + (f"  model moves {model}, fallbacks {fallback}, overruled {overruled}" if n.brain == "llm" else "")
            + (f"  ({n.seller_preferences.replace('_', ' ')})" if n.seller_preferences != "linear" else "")
        )
    lines += _preference_lines(result)
    lines += ["", "Delivery schedule (sealed-bid auctions):"]
    for d in result.schedule:
        if d.carrier is None:
            lines.append(f"  {d.shipment:<16} {d.origin} -> {d.destination}: UNSCHEDULED ({d.note})")
        else:
            lines.append(
                f"  {d.shipment:<16} {d.origin:<14} -> {d.destination:<9} {d.quantity:>6} units  "
                f"{d.carrier:<12} day {d.pickup_day:>3} -> {d.arrival_day:>3}  {d.price:>9.2f} EUR  "
                f"({d.bids} bids)"
            )
    status = "ON TIME" if result.on_time else "LATE or INCOMPLETE"
    lines += [
        "",
        f"Assembly done day {result.assembly_day}; delivered day {result.completion_day} "
        f"(due {c['due_day']}): {status}. Total cost {result.total_cost:,.2f} EUR.",
        "",
        "Agents (calls, model calls, tokens; call seconds summed over each agent's calls, which overlap when they",
        "run concurrently, so they can add up to more than the wall time; model CPU-seconds; energy estimate):",
    ]
    busiest = sorted(result.agents.items(), key=lambda kv: (-kv[1].tokens, -kv[1].calls, kv[0]))
    for name, a in busiest[:12]:
        t = result.timing.agents.get(name)
        lines.append(
            f"  {name:<18} {a.calls:>5} calls  {a.model_calls:>4} model  {a.tokens:>7} tokens  "
            f"{_f(t.seconds if t else None)} call-s  {_f(t.cpu_seconds if t else None)} CPU-s  "
            f"{_f(t.energy_j if t else None, 1)} J"
        )
    if len(busiest) > 12:
        lines.append(f"  ... and {len(busiest) - 12} more agents")
    total_tokens = sum(a.tokens for a in result.agents.values())
    lines.append(
        f"Total: {total_tokens} tokens, {result.timing.wall_seconds:.1f} s wall time of the run, "
        f"{result.timing.energy_j:.1f} J estimated."
    )
    return "\n".join(lines + (ledger_lines or []))


def _mean(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return _f(sum(known) / len(known), 3) if known else "-"


def _preference_lines(result: ScenarioResult) -> list[str]:
    """Mean distance of the agreements to the Pareto frontier and the Nash point per kind of supplier preferences
    (linear, or non-linear: capacity step, volume discount), when any supplier's are non-linear."""
    kinds = sorted({n.seller_preferences for n in result.negotiations})
    if kinds in ([], ["linear"]):
        return []
    lines = [
        "",
        "Pareto and Nash distances by the supplier's preferences (non-linear: capacity step, volume discount):",
    ]
    for kind in kinds:
        group = [n for n in result.negotiations if n.seller_preferences == kind]
        deals = sum(1 for n in group if n.outcome.agreement is not None)
        lines.append(
            f"  {kind.replace('_', ' '):<16} {len(group):>3} negotiations, {deals:>3} deals  "
            f"mean pareto {_mean([n.outcome.pareto_distance for n in group])}  "
            f"mean nash {_mean([n.outcome.nash_distance for n in group])}"
        )
    return lines


def plot(result: ScenarioResult, path: Path) -> Path | None:
    """The picture: offers over rounds per negotiation (agreements marked, model-guided threads solid), the
    delivery Gantt chart, and time per agent beside the run's wall time; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig = plt.figure(figsize=(15, 10.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.15, 1], width_ratios=[1.25, 1])
    _plot_offers(result, fig.add_subplot(grid[0, :]))
    _plot_schedule(result, fig.add_subplot(grid[1, 0]))
    _plot_agent_time(result, fig.add_subplot(grid[1, 1]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_offers(result: ScenarioResult, ax: Any) -> None:
    from matplotlib.lines import Line2D

    colours = _colours(len(result.negotiations))
    for n, colour in zip(result.negotiations, colours, strict=True):
        guided = n.brain == "llm"
        style = {"color": colour, "linestyle": "-" if guided else "--", "linewidth": 2.0 if guided else 1.0}
        label = f"{n.item} / {n.seller}" + (" (model-guided)" if guided else "")
        for sender, marker in ((n.buyer, "o"), (n.seller, "s")):
            pts = [p for p in n.trace if p.sender == sender]
            if pts:
                ax.plot(
                    [p.round for p in pts],
                    [max(p.buyer_utility, 0.0) for p in pts],
                    marker=marker,
                    markersize=3.5,
                    label=label if sender == n.buyer else None,
                    **style,
                )
        if n.trace:
            end = n.trace[-1]
            agreed = n.outcome.agreement is not None
            value = n.outcome.utilities.get(n.buyer) if agreed else None
            y = max(value if value is not None else end.buyer_utility, 0.0)
            ax.plot(
                [end.round],
                [y],
                marker="*" if agreed else "X",
                markersize=14 if agreed else 9,
                color=colour,
                markeredgecolor="black",
                linestyle="none",
                zorder=5,
            )
    key = [
        Line2D([], [], color="grey", marker="o", linestyle="none", label="manufacturer's offer"),
        Line2D([], [], color="grey", marker="s", linestyle="none", label="supplier's offer"),
        Line2D([], [], color="grey", linestyle="-", linewidth=2.0, label="model-guided thread (LLM picks moves)"),
        Line2D([], [], color="grey", linestyle="--", linewidth=1.0, label="rule thread (strategy only)"),
        Line2D(
            [],
            [],
            color="grey",
            marker="*",
            markersize=12,
            markeredgecolor="black",
            linestyle="none",
            label="agreement (its value to the manufacturer)",
        ),
        Line2D(
            [],
            [],
            color="grey",
            marker="X",
            markersize=8,
            markeredgecolor="black",
            linestyle="none",
            label="no agreement",
        ),
    ]
    threads = ax.legend(
        title="negotiation (component / supplier)",
        fontsize=7,
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        ncol=1 if len(result.negotiations) <= 18 else 2,
    )
    ax.add_artist(threads)
    ax.legend(
        handles=key,
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        title="markers and lines",
        title_fontsize=8,
    )
    ax.set_xlabel("round")
    ax.set_ylabel("offer's utility to the manufacturer\n(0: outside its limits)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Offers over rounds, one colour per negotiation")


def _colours(count: int) -> list[Any]:
    import matplotlib

    palette = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [palette(i % palette.N) for i in range(count)]


def _plot_schedule(result: ScenarioResult, ax: Any) -> None:
    shipped = [d for d in result.schedule if d.carrier and d.pickup_day is not None and d.arrival_day is not None]
    for y, d in enumerate(shipped):
        assert d.pickup_day is not None and d.arrival_day is not None
        ax.barh(y, max(d.arrival_day - d.pickup_day, 0.3), left=d.pickup_day, height=0.6, color="tab:blue")
        ax.text(d.arrival_day + 0.1, y, f"{d.carrier}", va="center", fontsize=7)
    ax.set_yticks(range(len(shipped)), [f"{d.item} ({d.origin} -> {d.destination})" for d in shipped], fontsize=7)
    ax.axvline(result.config["due_day"], color="red", linestyle="--", label="due day")
    ax.set_xlabel("day (pickup to arrival; carrier at the right)")
    ax.invert_yaxis()
    ax.set_title("Delivery schedule")
    ax.legend(fontsize=7)


def _plot_agent_time(result: ScenarioResult, ax: Any, top: int = 12) -> None:
    timing = result.timing
    busiest = sorted(timing.agents.items(), key=lambda kv: (-kv[1].seconds, kv[0]))[:top]
    names = [name for name, _ in busiest]
    ys = range(len(busiest))
    ax.barh(
        [y - 0.2 for y in ys],
        [t.seconds for _, t in busiest],
        height=0.4,
        color="tab:gray",
        label="call seconds (summed over the agent's calls; concurrent calls overlap)",
    )
    ax.barh(
        [y + 0.2 for y in ys],
        [t.cpu_seconds for _, t in busiest],
        height=0.4,
        color="tab:orange",
        label="model CPU-seconds",
    )
    ax.axvline(timing.wall_seconds, color="black", linestyle=":", label=f"run wall time {timing.wall_seconds:.2f} s")
    ax.set_yticks(list(ys), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    more = len(timing.agents) - len(busiest)
    ax.set_title(f"Time per agent (busiest {len(busiest)}{f', {more} more' if more > 0 else ''})")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))


def write_outputs(result: ScenarioResult, out: Path) -> list[Path]:
    """Write result.json (and manufacturing.png when matplotlib is installed) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "result.json"]
    written[0].write_text(result.model_dump_json(indent=2))
    picture = plot(result, out / "manufacturing.png")
    if picture is not None:
        written.append(picture)
    return written
