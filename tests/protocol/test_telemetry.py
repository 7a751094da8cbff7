"""Telemetry: off by default (no-op, nothing propagated), and when on, spans that join across A2A and MCP over real
HTTP, GenAI model spans, orchestrator run/task/attempt spans with the routing decision, and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, SpanKind

from agents import Agent, SkillContext
from agents.client import HttpAgentClient, skill_message
from agents.examples import echo_agent
from agents.llm.scripted import Scripted
from agents.mcp_client import McpToolClient
from agents.serve import create_app
from agents.testing import serve_in_thread
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from protocol import telemetry
from protocol.telemetry import OtelSetupError, configure, otel_requested
from registry import Registry
from tests.observability.trace_agents import Text

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """Tracing and metrics on (the SDK, in memory) for one test; off again after."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry.install(provider, MeterProvider(metric_readers=[reader]))
    try:
        yield spans, reader
    finally:
        telemetry.install(None)


def _agent() -> Agent:
    agent = Agent("shouter", "Shouts", brain=Scripted([{"text": "LOUD"}], cycle=True, name="scripted-shouter"))

    @agent.skill()
    async def shout(ctx: SkillContext, req: Text) -> Text:
        """Shout."""
        return await ctx.generate(f"Shout: {req.text}\nJSON:", Text)

    return agent


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Metric name -> its data points."""
    points: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


def test_off_by_default_nothing_is_recorded_or_propagated() -> None:
    telemetry.install(None)
    assert not telemetry.enabled()
    with telemetry.span("anything") as span:
        assert span is INVALID_SPAN
        headers = {"A2A-Version": "1.0"}
        assert telemetry.trace_headers(headers) is headers  # no copy, no traceparent
        assert telemetry.trace_meta() is None
    assert telemetry.current_ids() is None


def test_with_tracing_off_a_callers_trace_passes_through_unbroken() -> None:
    telemetry.install(None)
    parent = telemetry.extract_headers({"traceparent": TRACEPARENT})
    with telemetry.span("server", context=parent):
        onward = telemetry.trace_headers({})
        meta = telemetry.trace_meta()
    assert onward["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert meta is not None and meta["traceparent"] == onward["traceparent"]


@pytest.mark.parametrize("bad", ["", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"])
def test_a_malformed_traceparent_is_ignored(bad: str) -> None:
    assert telemetry.extract_headers({"traceparent": bad}) is None
    assert telemetry.extract_meta({"traceparent": bad}) is None
    assert telemetry.extract_headers({}) is None and telemetry.extract_meta(None) is None


@pytest.mark.anyio
async def test_an_a2a_call_over_http_is_one_trace_down_to_the_model(
    exported: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = exported
    with serve_in_thread(create_app(_agent(), base_url="http://127.0.0.1")) as url:
        async with HttpAgentClient(url + "/") as client:
            with telemetry.span("caller") as caller:
                task = await client.send_message(skill_message("shout", {"text": "hi"}))
    assert task.artifacts
    spans = list(exporter.get_finished_spans())
    assert {s.context.trace_id for s in spans} == {caller.get_span_context().trace_id}
    generation = next(s for s in spans if s.name == "text_completion scripted-shouter")
    skill = _parent(generation, spans)
    server = _parent(skill, spans)
    client_span = _parent(server, spans)
    assert skill.name == telemetry.SPAN_SKILL and _attrs(skill)["scaleout.skill"] == "shout"
    assert server.name == "a2a SendMessage" and server.kind == SpanKind.SERVER
    assert client_span.name == "a2a SendMessage" and client_span.kind == SpanKind.CLIENT
    assert _parent(client_span, spans).name == "caller"
    assert _attrs(generation)["gen_ai.operation.name"] == "text_completion"
    assert _attrs(generation)["gen_ai.request.model"] == "scripted-shouter"
    assert _attrs(generation)["gen_ai.usage.input_tokens"] == 3  # Scripted counts words: "Shout: hi\nJSON:"
    assert _attrs(generation)["gen_ai.usage.output_tokens"] == 2
    points = _metrics(reader)
    (calls,) = points[telemetry.METRIC_SKILL_DURATION]
    assert calls.count == 1 and calls.attributes["scaleout.skill.outcome"] == "completed"
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points[telemetry.METRIC_TOKEN_USAGE]}
    assert tokens == {"input": 3, "output": 2}


@pytest.mark.anyio
async def test_an_mcp_tool_call_carries_the_trace_in_meta(
    exported: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, _ = exported
    with serve_in_thread(create_app(_agent(), base_url="http://127.0.0.1")) as url:
        async with McpToolClient.http(url + "/mcp") as tools:
            with telemetry.span("caller") as caller:
                assert await tools.call_tool("shout", {"text": "hi"}) == {"text": "LOUD"}
    spans = list(exporter.get_finished_spans())
    skill = next(s for s in spans if s.name == telemetry.SPAN_SKILL)
    assert skill.context.trace_id == caller.get_span_context().trace_id
    ancestors, span = [], skill
    while span.parent is not None:
        span = _parent(span, spans)
        ancestors.append(span.name)
    assert ancestors[-2:] == ["mcp tools/call shout", "caller"]


@pytest.mark.anyio
async def test_a_run_has_run_task_and_attempt_spans_with_the_routing_decision(
    tmp_path: Path, exported: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    exporter, reader = exported
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    registry = Registry(db)
    local = echo_agent("echo-local")
    registry.register_card(local.card("local://echo-local"), transport="local", url="local://echo-local")
    orchestrator = Orchestrator(registry, db, local_agents=[local], router=Router(registry, cache_ttl_s=60))
    async with orchestrator.running():
        record = await orchestrator.run({"skill": "echo", "input": {"text": "hi"}})
    assert record["status"] == "succeeded"
    spans = list(exporter.get_finished_spans())
    attempt = next(s for s in spans if s.name == telemetry.SPAN_ATTEMPT)
    task = _parent(attempt, spans)
    run = _parent(task, spans)
    assert (task.name, run.name, run.parent) == (telemetry.SPAN_TASK, telemetry.SPAN_RUN, None)
    assert _attrs(run)["scaleout.run.id"] == record["id"] and _attrs(run)["scaleout.run.status"] == "succeeded"
    assert _attrs(task)["scaleout.routing.ranked"] == ("echo-local",)
    assert [e.name for e in task.events] == ["routing.candidate"]
    assert _attrs(attempt)["scaleout.agent.name"] == "echo-local"
    assert _attrs(attempt)["scaleout.attempt.status"] == "succeeded"
    assert any(s.name == telemetry.SPAN_SKILL and _parent(s, spans) is attempt for s in spans)
    points = _metrics(reader)
    (attempts,) = points[telemetry.METRIC_ATTEMPT_DURATION]
    assert attempts.count == 1 and attempts.attributes["scaleout.skill"] == "echo"
    assert attempts.attributes["scaleout.attempt.status"] == "succeeded"
    assert telemetry.METRIC_ATTEMPT_ENERGY in points  # the energy estimate of the attempt


def test_which_otel_variables_turn_telemetry_on() -> None:
    assert not otel_requested({})
    assert not otel_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_SERVICE_NAME": "x"})
    assert otel_requested({"OTEL_TRACES_EXPORTER": "console"})
    assert otel_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not otel_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert configure("test", environ={}) is False  # nothing asked: nothing installed, nothing sent
    assert configure("test", force=True, environ={"OTEL_SDK_DISABLED": "true"}) is False


def test_an_unknown_exporter_is_a_clear_error() -> None:
    with pytest.raises(OtelSetupError, match="OTEL_TRACES_EXPORTER='zipkin' is not supported"):
        configure("test", force=True, environ={"OTEL_TRACES_EXPORTER": "zipkin"})
