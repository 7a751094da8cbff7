"""Jump-forward constrained decoding: what the grammar forces, the tokens proposed for it, and, on the real model,
that jumping forward keeps every output valid (and, verified, identical to step-by-step greedy decoding)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from agents.llm.constraints import ChoiceConstraint, GrammarConstraint, schema_to_gbnf
from agents.llm.engine import Engine, EngineConfig
from agents.llm.jobs import Job
from agents.llm.jump_forward import GbnfAutomaton, GrammarTracker
from agents.llm.native import ContextConfig, NativeContext, NativeModel
from agents.llm.sampling import TokenSampler
from bench.inference import SCHEMA  # the schemas bench/inference.py measures
from bench.inference import SKILL_SCHEMA as SKILL

# the offer schema with its strings bounded, so that greedy output ends inside the tests' 160 tokens on any CPU
# (unbounded, the note ran past it on one machine: greedy picks differ in the last bits between CPUs)
OFFER = {
    **SCHEMA,
    "properties": {
        **SCHEMA["properties"],
        "item": {"type": "string", "maxLength": 24},
        "note": {"type": "string", "maxLength": 60},
    },
}


class Shipment(BaseModel):
    carrier: str = Field(max_length=24)
    pallets: list[int] = Field(max_length=3)
    priority: Literal["low", "normal", "high"]
    insured: bool | None


def _walk(schema: dict[str, Any], output: str) -> list[str]:
    """Feed ``output`` through the schema's grammar, jumping over every forced text; the texts jumped over."""
    tracker = GrammarTracker(schema_to_gbnf(json.dumps(schema)))
    jumps: list[str] = []
    i = 0
    while i < len(output):
        text, _ = tracker.forced_text()
        if text:
            assert output.startswith(text, i), (output[i:], text)
            jumps.append(text)
            tracker.feed(text.encode())
            i += len(text)
        else:
            tracker.feed(output[i].encode())
            i += 1
        assert not tracker.lost, output[:i]
    return jumps


def test_punctuation_keys_in_order_and_enum_tails_are_forced() -> None:
    out = '{"action": "counter", "urgent": false, "quantity": 100, "price": 9.5, "note": "ok"}'
    assert _walk(SKILL, out) == [
        '{"action": "',  # the object opens with its first declared key
        'ounter", "urgent": ',  # "c" made the enum value unique; then the next key in declared order
        'alse, "quantity": ',  # "f": false
        ' "price": ',  # after "," (an integer may have more digits before it)
        ' "note": "',
        "}",  # after the closing quote (a string may go on before it)
    ]


def test_literals_true_false_null_and_short_enums() -> None:
    out = '{"carrier": "DHL", "pallets": [1, 2], "priority": "normal", "insured": null}'
    jumps = _walk(Shipment.model_json_schema(), out)
    assert jumps == ['{"carrier": "', ', "pallets": [', " ", ', "priority": "', 'ormal", "insured": ', "ull}"]
    assert _walk(Shipment.model_json_schema(), out.replace("null", "true"))[-1] == "rue}"


def test_nothing_is_forced_where_there_is_a_choice() -> None:
    tracker = GrammarTracker(schema_to_gbnf(json.dumps(SKILL)))
    for prefix, forced in [
        ('{"action": "', ""),  # accept | counter | reject
        ('accept", "urgent": ', ""),  # true | false
        ("false", ', "quantity": '),
        ("1", ""),  # more digits, or the comma
        (', "price": 9', ""),
        ('.5, "note": "', ""),  # any text, or the closing quote
        ("ok", ""),
    ]:
        tracker.feed(prefix.encode())
        assert tracker.forced_text()[0] == forced, prefix
    tracker.feed(b'"}')
    assert tracker.forced_text() == ("", False)  # the value closed: nothing more


def test_optional_properties_and_open_values_force_nothing() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {}}, "required": []}
    tracker = GrammarTracker(schema_to_gbnf(json.dumps(schema)))
    assert tracker.forced_text()[0] == "{"
    tracker.feed(b'{"')
    assert tracker.forced_text()[0] == ""  # "a" or "b"


def test_a_character_split_across_tokens_forces_nothing_until_complete() -> None:
    tracker = GrammarTracker(schema_to_gbnf(json.dumps({"enum": ["café au lait", "tea"]})))
    tracker.feed(b'"caf\xc3')
    assert tracker.forced_text()[0] == ""
    tracker.feed(b"\xa9")
    assert tracker.forced_text() == (' au lait"', True)


def test_text_the_grammar_refuses_stops_the_tracker_for_good() -> None:
    tracker = GrammarTracker(schema_to_gbnf(json.dumps(SKILL)))
    tracker.feed(b'{"nope')
    assert tracker.lost and tracker.forced_text() == ("", False)
    unreadable = GrammarTracker('root ::= "a"{2}')
    assert unreadable.lost and unreadable.forced_text() == ("", False)


def test_forced_text_is_cheap_once_the_grammar_is_warm() -> None:
    gbnf = schema_to_gbnf(json.dumps(SKILL))
    out = b'{"action": "counter", "urgent": false, "quantity": 100, "price": 9.5, "note": "a short note"}'
    GrammarTracker(gbnf).feed(out)  # warms the shared caches
    for _ in range(3):
        GbnfAutomaton.of(gbnf)
    started = time.perf_counter()
    for _ in range(20):
        tracker = GrammarTracker(gbnf)
        for i in range(len(out)):
            tracker.feed(out[i : i + 1])
            tracker.forced_text()
    per_char_us = (time.perf_counter() - started) / (20 * len(out)) * 1e6
    print(f"\ntracker: {per_char_us:.1f} us per character (feed + forced_text), warm")
    assert per_char_us < 2000  # a decode step is ~10 ms; generous for a loaded machine


# ---- with the bundled model's tokenizer and weights ---------------------------------------------------------
@pytest.mark.model
def test_choice_constraint_forces_the_only_branch(weights: NativeModel) -> None:
    constraint = ChoiceConstraint(weights, ["approve the order", "reject"])
    assert constraint.forced() == []  # two branches
    first = weights.tokenize("approve the order", add_bos=False, special=False)
    constraint.accept(first[0])
    assert constraint.forced() == first[1:]
    for token in first[1:]:
        constraint.accept(token)
    assert constraint.done and constraint.forced() == []


@pytest.mark.model
def test_grammar_constraint_forces_canonical_tokens_but_the_last(weights: NativeModel) -> None:
    constraint = GrammarConstraint.from_schema(weights, SKILL)
    try:
        canonical = weights.tokenize('{"action": "', add_bos=False, special=False)
        forced = constraint.forced()
        assert forced == canonical[:-1] and forced  # the last may merge with the value: the model picks it
        for token in forced:
            constraint.accept(token)
        for token in weights.tokenize(' "reject', add_bos=False, special=False):
            constraint.accept(token)
        rest = weights.tokenize('", "urgent": ', add_bos=False, special=False)
        assert constraint.forced() == rest[:-1]
        with pytest.raises(ValueError, match="not allowed"):
            constraint.accept(weights.tokenize("}", add_bos=False, special=False)[0])
    finally:
        constraint.close()


@pytest.mark.model
def test_forced_tokens_run_to_the_end_when_the_grammar_ends_there(weights: NativeModel) -> None:
    schema = {
        "type": "object",
        "properties": {"unit": {"const": "kg"}, "n": {"enum": [10, 12]}},
        "required": ["unit", "n"],
    }
    constraint = GrammarConstraint.from_schema(weights, schema)
    try:
        for token in constraint.forced():
            constraint.accept(token)
        assert (
            constraint.forced() == []
        )  # '{"unit": "kg", "n": ' forced; "1" held back (it may merge with what follows)
        for token in weights.tokenize("12", add_bos=False, special=False):
            constraint.accept(token)
        closing = constraint.forced()
        assert weights.detokenize(closing) == "}"  # nothing can follow: the last token is forced too
        constraint.accept(closing[0])
        assert constraint.done and constraint.forced() == []
    finally:
        constraint.close()


def _generate(
    model: NativeModel, ctx: NativeContext, prompt: str, schema: dict[str, Any], mode: str, max_tokens: int = 160
) -> tuple[list[int], int, int]:
    """Constrained greedy decoding of one sequence: ``"step"`` (one decode per token), ``"jump"`` (forced tokens
    decoded in the batch of the sampled one) or ``"verify"`` (jump, but every forced token checked against the
    greedy pick from its own logits row; the first mismatch is dropped from the cache and replaced by that pick).
    Returns the tokens, the decode calls after the prompt and the forced tokens kept."""
    constraint = GrammarConstraint.from_schema(model, schema)
    sampler = TokenSampler()
    tokens = model.tokenize(prompt)
    ctx.seq_rm(0)
    ctx.clear_batch()
    row = -1
    for pos, token in enumerate(tokens):
        row = ctx.add(token, pos, 0, pos == len(tokens) - 1)
    ctx.decode()
    pos = len(tokens)
    out: list[int] = []
    steps = kept = 0
    carried: int | None = None
    try:
        while len(out) < max_tokens:
            token = carried if carried is not None else sampler.pick(ctx.logits(row), constraint)
            carried = None
            if token in model.eog:
                break
            out.append(token)
            constraint.accept(token)
            forced = [] if constraint.done or mode == "step" else constraint.forced()[: max_tokens - len(out)]
            forced = forced[: ctx.config.n_seq - 1]  # at most n_seq logits rows per decode
            if mode == "jump":
                for t in forced:
                    constraint.accept(t)
                out += forced
                kept += len(forced)
            if constraint.done or len(out) >= max_tokens:
                break
            batch = [token, *forced]
            ctx.clear_batch()
            rows = [ctx.add(t, pos + i, 0, mode == "verify" or i == len(batch) - 1) for i, t in enumerate(batch)]
            ctx.decode()
            steps += 1
            row = rows[-1]
            if mode == "verify":
                for i, t in enumerate(forced):
                    pick = sampler.pick(ctx.logits(rows[i]), constraint)
                    if pick != t:
                        ctx.seq_rm(0, pos + i + 1, -1)
                        batch = batch[: i + 1]
                        carried = pick
                        break
                    constraint.accept(t)
                    out.append(t)
                    kept += 1
                    if constraint.done:
                        break
                if constraint.done:
                    break
            pos += len(batch)
    finally:
        constraint.close()
    return out, steps, kept


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("skill", "A supplier answers a buyer's offer of 100 gears at 9.5 each. Reply as JSON:", SKILL),
    ("offer", "Supplier 2 writes to the buyer about an order of 12 steel gears: As JSON:", OFFER),
    ("shipment", "Plan the shipment of 40 pallets of steel to Hamburg. As JSON:", Shipment.model_json_schema()),
    (
        "array",
        "List three machines of the plant with their load in percent. As JSON:",
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 16}, "load": {"type": "integer"}},
                "required": ["name", "load"],
            },
            "minItems": 1,
            "maxItems": 3,
        },
    ),
]
# where step-by-step greedy spells every forced text the canonical way, plain jump-forward is token-identical.
# "offer" was too on the Intel machine it was written on; on an AMD EPYC its note flips at a near-tie right after
# forced tokens (step: "The price...", jump: "12"), whose KV cells come from a multi-token batch
CANONICAL = {"array"}


@pytest.fixture(scope="module")
def context(weights: NativeModel) -> Any:
    ctx = NativeContext(weights, ContextConfig(n_ctx=1024, n_seq=16, n_batch=256))
    yield ctx
    ctx.close()


@pytest.mark.model
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("name", "prompt", "schema"), CASES, ids=[c[0] for c in CASES])
def test_jump_forward_matches_step_by_step_greedy(
    weights: NativeModel, context: NativeContext, name: str, prompt: str, schema: dict[str, Any]
) -> None:
    step, step_calls, _ = _generate(weights, context, prompt, schema, "step")
    jump, jump_calls, forced = _generate(weights, context, prompt, schema, "jump")
    verified, verify_calls, _ = _generate(weights, context, prompt, schema, "verify")
    for tokens in (step, jump, verified):
        jsonschema.validate(json.loads(weights.detokenize(tokens)), schema)  # complete and valid, every mode
    assert forced > 0 and jump_calls + forced <= len(jump) and verify_calls < step_calls
    if name in CANONICAL:  # greedy spells the forced text canonically: all three are the same tokens
        assert jump == step and verified == step
    # elsewhere the verified jump follows greedy until a near-tie flips: the forced tokens' KV cells come from a
    # multi-token batch, whose sums differ in the last bits from one-token decodes (docs/inference.md)
    agree = next((i for i, (a, b) in enumerate(zip(step, verified, strict=False)) if a != b), len(step))
    print(
        f"\n{name}: step {len(step)} tokens/{step_calls} decodes, jump {len(jump)}/{jump_calls} ({forced} forced), "
        f"verified {len(verified)}/{verify_calls}, verified = step for the first {agree} tokens"
    )


@pytest.mark.model
@pytest.mark.anyio
@pytest.mark.timeout(900)
async def test_engine_jump_forward_keeps_outputs_valid_and_canonical_ones_identical(
    weights: NativeModel, wait_done: Callable[..., Awaitable[Job]]
) -> None:
    """Through the engine (``EngineConfig.jump_forward``), one job at a time: every output validates; where greedy
    spells the forced text canonically, jump-forward is token-for-token plain constrained greedy decoding."""
    outputs: dict[bool, list[list[int]]] = {}
    for jump in (False, True):
        engine = Engine(
            weights, ContextConfig(n_ctx=1024, n_seq=2, n_batch=256), options=EngineConfig(jump_forward=jump)
        )
        try:
            outputs[jump] = []
            for _, prompt, schema in CASES:
                job = Job(
                    prompt=weights.tokenize(prompt),
                    max_tokens=160,
                    sampler=TokenSampler(),
                    constraint=GrammarConstraint.from_schema(weights, schema),
                )
                await wait_done(engine.submit(job), 300)
                assert job.result is not None and job.result.stop_reason == "stop", job.error
                jsonschema.validate(json.loads(job.result.text), schema)
                outputs[jump].append(job.result.tokens)
        finally:
            engine.close()
    for (name, _, _), plain, jumped in zip(CASES, outputs[False], outputs[True], strict=True):
        if name in CANONICAL:
            assert jumped == plain, name
