"""Where the small model earns its place in a negotiation: language. Read a counter-offer written in free text into
an ``Offer``, and explain an offer in one sentence.

Guardrails are code. ``read_offer``: the model answers inside a JSON schema built from the issues (an enum of the
grid values, or the issue's bounds for a large grid; null when the text does not say); then every value must lie on
the issue's grid (or within 1 % of a grid value, which it is snapped to) and must be written in the text (a model
that invents a number is refused). Refused or missing values are read by the rule parser
(``agents.negotiators.offer_text``). ``explain_offer``: one sentence of bounded length that must state every value
of the offer; otherwise a template sentence.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from agents.agent import Agent, SkillContext
from agents.errors import AgentError
from agents.negotiators.offer_text import issue_kind, mentions, parse_offer_rules, snap
from protocol.negotiation import Issue, Offer

__all__ = [
    "ReadOfferRequest",
    "OfferReading",
    "ExplainOfferRequest",
    "OfferExplanation",
    "read_offer",
    "check_reading",
    "explain_offer",
    "template_sentence",
    "add_language_skills",
    "reading_model",
    "ENUM_LIMIT",
    "MAX_SENTENCE",
]

ENUM_LIMIT = 64  # grids up to this many values are an enum in the schema; larger ones are bounds
MAX_SENTENCE = 240
MAX_TEXT = 2_000
Source = Literal["model", "rules", "mixed", "none"]


class ReadOfferRequest(BaseModel):
    """A counter-offer written in free text, and the negotiation's issues to read it onto."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    issues: list[Issue] = Field(min_length=1, max_length=32)


class OfferReading(BaseModel):
    """What the text offers: ``offer`` when every issue was read onto its grid, else None.

    ``values`` holds what was read (None: the text does not say, or what it says is off the grid), ``refused``
    says why a value was not taken, ``source`` who read the values that were.
    """

    offer: Offer | None
    values: dict[str, float | None]
    refused: dict[str, str] = Field(default_factory=dict)
    source: Source


class ExplainOfferRequest(BaseModel):
    """An offer to explain to the other side in one sentence."""

    offer: Offer
    issues: list[Issue] = Field(min_length=1, max_length=32)
    context: str = Field(default="", max_length=500, description="e.g. who speaks to whom about what")


class OfferExplanation(BaseModel):
    """One sentence stating every value of the offer; ``source`` is 'model' or 'template'."""

    sentence: str = Field(min_length=1, max_length=MAX_SENTENCE)
    source: Literal["model", "template"]


class _Sentence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sentence: str = Field(min_length=10, max_length=MAX_SENTENCE)


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _field(issue: Issue) -> Any:
    value: Any = (
        Annotated[float, WithJsonSchema({"type": "number", "enum": list(issue.values)})]
        if len(issue.values) <= ENUM_LIMIT
        else Annotated[float, Field(ge=issue.low, le=issue.high)]
    )
    return (value | None, Field(description=_describe(issue)))


def reading_model(issues: list[Issue]) -> type[BaseModel]:
    """The schema the model reads inside: one nullable field per issue (its grid as an enum, or its bounds)."""
    fields: dict[str, Any] = {issue.name: _field(issue) for issue in issues}
    return create_model("OfferText", __config__=ConfigDict(extra="forbid"), **fields)


def _describe(issue: Issue) -> str:
    kind = issue_kind(issue)
    unit = f" {issue.unit}" if issue.unit else ""
    what = {
        "price": f"price per unit{unit}",
        "quantity": f"number of units{unit}",
        "days": f"days{'' if unit.strip() in {'day', 'days'} else unit}",
        "percent": f"percent{unit}",
    }.get(kind, f"{issue.name.replace('_', ' ')}{unit}")
    return f"{what}, {_number(issue.low)} to {_number(issue.high)}"


def _phrase(issue: Issue, value: float, style: int) -> str:
    kind, number = issue_kind(issue), _number(value)
    if kind == "price":
        return [f"{number} {issue.unit or 'each'}", f"price {number} per unit", f"at {number} each"][style]
    if kind == "quantity":
        return [f"{number} units", f"{number} pcs", f"quantity {number}"][style]
    if kind == "days" and style == 1 and value % 7 == 0:
        return f"delivery within {int(value // 7)} weeks"
    if kind == "days":
        return [f"delivery in {number} days", f"in {number} days", f"day {number}"][style]
    return f"{issue.name.replace('_', ' ')} {number}"


_EXAMPLE_VALUES = {  # per kind, for the three examples: fixed, so the prompt prefix is the same on every grid
    "price": (12.5, 14.0, 13.2),
    "quantity": (300.0, 250.0, 320.0),
    "days": (9.0, 21.0, 12.0),
    "percent": (1.0, 2.0, 5.0),
    "other": (3.0, 6.0, 4.0),
}


def _examples(issues: list[Issue]) -> list[str]:
    """Three worked examples on the same issue names (a week count, a stale number, a term left out), so the
    model sees each term written three ways. Their values do not depend on the grid."""
    lines = []
    for style, (opener, closer) in enumerate(
        [("We could do ", "."), ("Fine, ", " (your 11 is too low)."), ("OK, ", ".")]
    ):
        shown = issues if style < 2 or len(issues) == 1 else issues[:-1]
        values = {i.name: _EXAMPLE_VALUES[issue_kind(i)][style] for i in issues}
        text = opener + ", ".join(_phrase(i, values[i.name], style) for i in shown) + closer
        answer = ", ".join(f'"{i.name}": {values[i.name]!r}' if i in shown else f'"{i.name}": null' for i in issues)
        lines += [f'Message: "{text}"', "JSON: {" + answer + "}"]
    return lines


def _instructions(issues: list[Issue]) -> str:
    """The fixed part of the prompt (task, term names, examples): the same for every grid on these issue names,
    so the engine reuses its KV cells; the grid's ranges come in the changing tail (``_terms``)."""
    lines = [
        "Read the offer in a negotiation message and write it as JSON. Use null for a term the message does not give.",
        "Give the numbers of the new offer, not old or rejected ones. A week is 7 days.",
        *_examples(issues),
    ]
    return "\n".join(lines)


def _terms(issues: list[Issue]) -> str:
    return "Terms: " + "; ".join(f"{issue.name}: {_describe(issue)}" for issue in issues)


def check_reading(
    raw: dict[str, Any], text: str, issues: list[Issue]
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Keep only values that lie on (or snap onto) their issue's grid and are written in ``text``.

    Returns the kept values (None for missing or refused) and why each refused value was refused.
    """
    written = mentions(text)
    values: dict[str, float | None] = {}
    refused: dict[str, str] = {}
    for issue in issues:
        value = raw.get(issue.name)
        values[issue.name] = None
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            refused[issue.name] = f"{value!r} is not a number"
            continue
        grid_value = snap(float(value), issue)
        if grid_value is None:
            refused[issue.name] = f"{value:g} is not within 1 % of an allowed value ({_describe(issue)})"
        elif not any(snap(m.value, issue) == grid_value for m in written):
            refused[issue.name] = f"{grid_value:g} is not written in the text"
        else:
            values[issue.name] = grid_value
    return values, refused


def _reading(values: dict[str, float | None], refused: dict[str, str], sources: set[str]) -> OfferReading:
    complete = all(v is not None for v in values.values())
    offer = Offer(values={k: v for k, v in values.items() if v is not None}) if complete else None
    source: Source = "none" if not sources else "mixed" if len(sources) > 1 else sources.pop()  # type: ignore[assignment]
    return OfferReading(offer=offer, values=values, refused=refused, source=source)


async def read_offer(
    text: str,
    issues: list[Issue],
    ctx: SkillContext | None = None,
    *,
    fallback: bool = True,
    order: Literal["rules-first", "model-first"] = "rules-first",
) -> OfferReading:
    """Read a counter-offer written in free text onto ``issues``; the model's values are checked by code.

    ``order="rules-first"`` (the default, measured best: docs/skills.md) reads with the rules and asks the model
    only for the values they leave empty (no model call when they read everything); ``"model-first"`` asks the
    model first and lets the rules fill what it did not give or what code refused. Without a brain (``ctx`` None
    or brainless) only the rules read. ``fallback=False`` is the model's reading alone (no rules at all).
    """
    if order == "rules-first" and fallback:
        ruled = parse_offer_rules(text, ReadOfferRequest(text=text, issues=issues).issues)
        if all(value is not None for value in ruled.values()) or ctx is None or ctx.brain is None:
            return _reading(dict(ruled), {}, {"rules"} if any(v is not None for v in ruled.values()) else set())
        modelled = await read_offer(text, issues, ctx, fallback=False, order="model-first")
        merged = {name: value if value is not None else modelled.values[name] for name, value in ruled.items()}
        sources = {"rules"} if any(v is not None for v in ruled.values()) else set()
        if any(ruled[name] is None and merged[name] is not None for name in merged):
            sources.add("model")
        return _reading(merged, modelled.refused, sources)
    request = ReadOfferRequest(text=text, issues=issues)
    refused: dict[str, str] = {}
    values: dict[str, float | None] = {issue.name: None for issue in request.issues}
    by: dict[str, str] = {}
    if ctx is not None and ctx.brain is not None:
        try:
            answer = await ctx.generate(
                f'{_terms(request.issues)}\nMessage: "{request.text}"\nJSON:',
                reading_model(request.issues),
                system=_instructions(request.issues),
                max_tokens=24 + 16 * len(request.issues),
            )
            values, refused = check_reading(answer.model_dump(), request.text, request.issues)
        except AgentError as exc:
            refused = {"*": f"model output unusable ({type(exc).__name__})"}
        by = {name: "model" for name, value in values.items() if value is not None}
    if fallback or ctx is None or ctx.brain is None:
        ruled = parse_offer_rules(request.text, request.issues)
        for name, value in values.items():
            if value is None and ruled[name] is not None:
                values[name] = ruled[name]
                by[name] = "rules"
    return _reading(values, refused, set(by.values()))


def template_sentence(offer: Offer, issues: list[Issue]) -> str:
    """The fallback explanation: every value, in issue order, in one plain sentence."""
    parts = []
    for issue in issues:
        value = _number(offer.values[issue.name])
        kind = issue_kind(issue)
        parts.append(
            {
                "price": f"a unit price of {value} {issue.unit}".rstrip(),
                "quantity": f"{value} units",
                "days": f"{issue.name.replace('_', ' ')} {value}",
            }.get(kind, f"{issue.name.replace('_', ' ')} {value} {issue.unit}".rstrip())
        )
    return ("We offer " + ", ".join(parts) + ".")[:MAX_SENTENCE]


def _states_every_value(sentence: str, offer: Offer, issues: list[Issue]) -> bool:
    written = {round(m.value, 6) for m in mentions(sentence)}
    return all(round(offer.values[issue.name], 6) in written for issue in issues)


async def explain_offer(
    offer: Offer, issues: list[Issue], ctx: SkillContext | None = None, *, context: str = ""
) -> OfferExplanation:
    """One sentence (at most ``MAX_SENTENCE`` characters) explaining ``offer``, written by the model and checked to
    state every value; the template sentence when there is no brain or the model's sentence misses a value."""
    request = ExplainOfferRequest(offer=offer, issues=issues, context=context)
    if ctx is not None and ctx.brain is not None:
        terms = "; ".join(f"{i.name.replace('_', ' ')} = {_number(offer.values[i.name])} {i.unit}" for i in issues)
        prompt = (
            "Write one friendly sentence to the other side of a negotiation that states every term of our offer "
            f"with its exact number.{' Context: ' + request.context if request.context else ''}\n"
            f"Terms: {terms}\n"
            'Answer as JSON: {"sentence": "..."}\nJSON:'
        )
        try:
            answer = await ctx.generate(prompt, _Sentence, max_tokens=90)
            sentence = " ".join(answer.sentence.split())
            if _states_every_value(sentence, offer, request.issues):
                return OfferExplanation(sentence=sentence, source="model")
        except AgentError:
            pass
    return OfferExplanation(sentence=template_sentence(offer, request.issues), source="template")


def add_language_skills(agent: Agent) -> Agent:
    """Give ``agent`` the ``read_offer`` and ``explain_offer`` skills (its brain reads and writes; rules and
    templates when it has none)."""

    @agent.skill(
        "read_offer", tags=["negotiation", "language", "extract"], examples=["we can do 450 units at 12.40 each"]
    )
    async def read_offer_skill(ctx: SkillContext, req: ReadOfferRequest) -> OfferReading:
        """Read a counter-offer written in free text onto the negotiation's issues."""
        return await read_offer(req.text, req.issues, ctx)

    @agent.skill("explain_offer", tags=["negotiation", "language", "explain"])
    async def explain_offer_skill(ctx: SkillContext, req: ExplainOfferRequest) -> OfferExplanation:
        """Explain an offer to the other side in one sentence that states every value."""
        return await explain_offer(req.offer, req.issues, ctx, context=req.context)

    return agent
