"""Readable report, JSON result and picture (offers over rounds, delivery Gantt chart) of a manufacturing run."""

from __future__ import annotations

from pathlib import Path

from scenarios.manufacturing_result import ScenarioResult

__all__ = ["format_report", "write_outputs", "plot"]


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(result: ScenarioResult) -> str:
    """The run as plain text: sourcing, contracts, negotiations, schedule, per-agent cost."""
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
        )
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
        "Agents (calls, model calls, tokens, seconds, energy estimate):",
    ]
    busiest = sorted(result.agents.items(), key=lambda kv: (-kv[1].tokens, -kv[1].calls, kv[0]))
    for name, a in busiest[:12]:
        t = result.timing.agents.get(name)
        lines.append(
            f"  {name:<18} {a.calls:>5} calls  {a.model_calls:>4} model  {a.tokens:>7} tokens  "
            f"{_f(t.seconds if t else None)} s  {_f(t.energy_j if t else None, 1)} J"
        )
    if len(busiest) > 12:
        lines.append(f"  ... and {len(busiest) - 12} more agents")
    total_tokens = sum(a.tokens for a in result.agents.values())
    lines.append(
        f"Total: {total_tokens} tokens, {result.timing.wall_seconds:.1f} s wall, "
        f"{result.timing.energy_j:.1f} J estimated."
    )
    return "\n".join(lines)


def plot(result: ScenarioResult, path: Path) -> Path | None:
    """Offers over rounds per negotiation and the delivery Gantt chart; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for n in result.negotiations:
        for sender, marker in ((n.buyer, "o"), (n.seller, "s")):
            pts = [p for p in n.trace if p.sender == sender]
            if pts:
                left.plot(
                    [p.round for p in pts],
                    [max(p.buyer_utility, 0.0) for p in pts],
                    marker=marker,
                    markersize=3,
                    linewidth=1,
                    label=f"{n.item}/{n.seller[-4:]} {'buyer' if sender == n.buyer else 'seller'}",
                )
    left.set_xlabel("round")
    left.set_ylabel("offer's utility to the manufacturer (0: outside its limits)")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.set_title("Offers over rounds (o: buyer's offers, s: seller's)")
    if len(result.negotiations) <= 8:
        left.legend(fontsize=6)
    shipped = [d for d in result.schedule if d.carrier and d.pickup_day is not None and d.arrival_day is not None]
    for y, d in enumerate(shipped):
        assert d.pickup_day is not None and d.arrival_day is not None
        right.barh(y, max(d.arrival_day - d.pickup_day, 0.3), left=d.pickup_day, height=0.6)
        right.text(d.arrival_day + 0.1, y, f"{d.carrier}", va="center", fontsize=7)
    right.set_yticks(range(len(shipped)), [f"{d.item} ({d.origin} -> {d.destination})" for d in shipped], fontsize=7)
    right.axvline(result.config["due_day"], color="red", linestyle="--", label="due day")
    right.set_xlabel("day (pickup to arrival; carrier at the right)")
    right.invert_yaxis()
    right.set_title("Delivery schedule")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
