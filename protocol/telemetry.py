"""OpenTelemetry traces and metrics for scaleout: a thin layer over ``opentelemetry-api``, off unless asked for.

Every span and metric name scaleout emits is defined here (docs/observability.md lists them). With tracing off
(the default) ``span`` hands back one shared no-op context and nothing is allocated per call; ``configure`` installs
the SDK and its exporters when ``--otel`` or the standard ``OTEL_*`` variables ask for it (the ``otel`` extra).
W3C ``traceparent`` travels in HTTP headers (A2A) and in MCP request ``_meta``, so one trace spans every host.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import INVALID_SPAN, ProxyTracerProvider, Span, SpanKind, StatusCode

__all__ = [
    "SPAN_RUN",
    "SPAN_TASK",
    "SPAN_ATTEMPT",
    "SPAN_A2A",
    "SPAN_MCP",
    "SPAN_SKILL",
    "GENAI_OPERATION",
    "METRIC_ATTEMPT_DURATION",
    "METRIC_ATTEMPT_TOKENS",
    "METRIC_ATTEMPT_ENERGY",
    "METRIC_SKILL_DURATION",
    "METRIC_TOKEN_USAGE",
    "METRIC_OPERATION_DURATION",
    "OtelSetupError",
    "SpanKind",
    "StatusCode",
    "configure",
    "install",
    "enabled",
    "span",
    "failed",
    "current_span",
    "current_ids",
    "trace_headers",
    "extract_headers",
    "trace_meta",
    "extract_meta",
    "generation_span",
    "record_generation",
    "record_attempt",
    "record_skill",
    "otel_requested",
]

# -- names (one place) --------------------------------------------------------------------------------------------
SPAN_RUN = "scaleout.run"  # orchestrator: one run (the trace's root unless the submitter sent a traceparent)
SPAN_TASK = "scaleout.task"  # orchestrator: one task of the run's graph, with the routing decision
SPAN_ATTEMPT = "scaleout.attempt"  # orchestrator: one try of a task on one candidate agent
SPAN_A2A = "a2a"  # "a2a <Method>": CLIENT on the caller (HttpAgentClient), SERVER on the agent
SPAN_MCP = "mcp tools/call"  # "mcp tools/call <tool>": CLIENT on the caller (McpToolClient)
SPAN_SKILL = "scaleout.skill"  # agent: one skill run (A2A task or MCP tool call)
GENAI_OPERATION = "text_completion"  # gen_ai.operation.name of a model generation ("text_completion <model>")

# calls are the histograms' counts: one record per call, the outcome an attribute (as HTTP's semantic conventions do)
METRIC_ATTEMPT_DURATION = "scaleout.attempt.duration"  # histogram, s, per agent, skill and status (orchestrator)
METRIC_ATTEMPT_TOKENS = "scaleout.attempt.tokens"  # counter, per agent, skill and gen_ai.token.type (orchestrator)
METRIC_ATTEMPT_ENERGY = "scaleout.attempt.energy"  # counter, J (the energy estimate), per agent and skill
METRIC_SKILL_DURATION = "scaleout.skill.duration"  # histogram, s, per agent, skill and outcome (agent)
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"  # histogram, tokens, GenAI semantic conventions (agent)
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"  # histogram, s, GenAI semantic conventions (agent)

_SCOPE = "scaleout"
_NOOP: AbstractContextManager[Span] = nullcontext(INVALID_SPAN)  # reusable: what every span is with tracing off
_TRACEPARENT = "traceparent"
_ON_VALUES = ("otlp", "console")
_ENDPOINTS = tuple(f"OTEL_EXPORTER_OTLP{kind}_ENDPOINT" for kind in ("", "_TRACES", "_METRICS"))


class OtelSetupError(RuntimeError):
    """Tracing was asked for but cannot start (the ``otel`` extra is missing, or an exporter name is unknown)."""


@dataclass
class _State:
    explicit: bool = False  # install() decided: the global providers are not consulted
    tracer: trace.Tracer | None = None
    meter: metrics.Meter | None = None
    instruments: _Instruments | None = None


_state = _State()


def install(tracer_provider: trace.TracerProvider | None, meter_provider: metrics.MeterProvider | None = None) -> None:
    """Use these providers for scaleout's spans and metrics (None, None: off), whatever the global ones are.

    For tests and benchmarks; ``configure`` is what servers call. ``install(None)`` turns tracing off again.
    """
    _state.explicit = True
    _state.tracer = tracer_provider.get_tracer(_SCOPE) if tracer_provider is not None else None
    _state.meter = meter_provider.get_meter(_SCOPE) if meter_provider is not None else None
    _state.instruments = None


def _tracer() -> trace.Tracer | None:
    """The tracer when tracing is on: the installed one, else the global provider's once an SDK set one."""
    if _state.tracer is not None or _state.explicit:
        return _state.tracer
    provider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider):
        return None
    _state.tracer = provider.get_tracer(_SCOPE)  # a global provider is set once: remember it
    _state.meter = _state.meter or metrics.get_meter_provider().get_meter(_SCOPE)
    return _state.tracer


def enabled() -> bool:
    """True when spans are recorded (an SDK tracer provider is in place)."""
    return _tracer() is not None


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: otel_context.Context | None = None,
) -> AbstractContextManager[Span]:
    """A span made current for the ``with`` block (a shared no-op when tracing is off).

    ``context`` (from ``extract_headers`` / ``extract_meta``) parents it on a caller in another process; with
    tracing off that context is still made current, so the trace passes through this host unbroken.
    """
    tracer = _tracer()
    if tracer is None:
        return _NOOP if context is None else _attached(context)
    return tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


@contextmanager
def _attached(context: otel_context.Context) -> Iterator[Span]:
    token = otel_context.attach(context)
    try:
        yield trace.get_current_span(context)
    finally:
        otel_context.detach(token)


def current_span() -> Span:
    """The current span (a no-op span when there is none): for attributes set deep inside a ``span`` block."""
    return trace.get_current_span()


def failed(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc`` that was caught (and handled) inside it: status ERROR, exception event."""
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500])


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as lower-case hex, or None when there is none."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


# -- propagation -------------------------------------------------------------------------------------------------


def trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus ``traceparent`` (and ``tracestate``/``baggage``) of the current span; the same dict, not
    a copy, when there is no trace to pass on."""
    if not trace.get_current_span().get_span_context().is_valid:
        return headers
    out = dict(headers)
    propagate.inject(out)
    return out


def extract_headers(headers: Mapping[str, str]) -> otel_context.Context | None:
    """The caller's trace context from HTTP ``headers`` (a Starlette ``Headers`` or dict), or None without one."""
    if headers.get(_TRACEPARENT) is None:
        return None
    return _valid(propagate.extract(headers))


def trace_meta() -> dict[str, Any] | None:
    """An MCP request ``_meta`` carrying the current span's ``traceparent``, or None when there is no trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    meta: dict[str, Any] = {}
    propagate.inject(meta)
    return meta


def extract_meta(meta: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The caller's trace context from an MCP request's ``_meta``, or None without one."""
    if not meta or not isinstance(meta.get(_TRACEPARENT), str):
        return None
    return _valid(propagate.extract(meta))


def _valid(ctx: otel_context.Context) -> otel_context.Context | None:
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


# -- GenAI model spans and metrics -------------------------------------------------------------------------------


@dataclass
class _Instruments:
    attempt_duration: Any
    attempt_tokens: Any
    attempt_energy: Any
    skill_duration: Any
    token_usage: Any
    operation_duration: Any


def _instruments() -> _Instruments | None:
    """The metric instruments, made once per meter; None when metrics are off."""
    if _state.instruments is not None:
        return _state.instruments
    _tracer()  # resolves a global SDK provider's meter too
    meter = _state.meter
    if meter is None:
        return None
    _state.instruments = _Instruments(
        attempt_duration=meter.create_histogram(METRIC_ATTEMPT_DURATION, unit="s", description="attempts, wall time"),
        attempt_tokens=meter.create_counter(METRIC_ATTEMPT_TOKENS, unit="{token}", description="tokens per attempt"),
        attempt_energy=meter.create_counter(METRIC_ATTEMPT_ENERGY, unit="J", description="energy estimate"),
        skill_duration=meter.create_histogram(METRIC_SKILL_DURATION, unit="s", description="skill runs, wall time"),
        token_usage=meter.create_histogram(METRIC_TOKEN_USAGE, unit="{token}", description="tokens per generation"),
        operation_duration=meter.create_histogram(
            METRIC_OPERATION_DURATION, unit="s", description="model generation wall time"
        ),
    )
    return _state.instruments


def generation_span(model: str, *, max_tokens: int, temperature: float, seed: int) -> AbstractContextManager[Span]:
    """The span of one model generation, ``text_completion <model>``, with the GenAI request attributes."""
    if _tracer() is None:
        return _NOOP
    attributes = {
        "gen_ai.operation.name": GENAI_OPERATION,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.seed": seed,
    }
    return span(f"{GENAI_OPERATION} {model}", attributes)


def record_generation(
    span: Span, model: str, input_tokens: int, output_tokens: int, finish_reason: str, seconds: float
) -> None:
    """Put a finished generation's usage on its span (``gen_ai.usage.*``) and in the GenAI metrics."""
    if span.is_recording():
        span.set_attributes(
            {
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.response.finish_reasons": (finish_reason,),
            }
        )
    meters = _instruments()
    if meters is None:
        return
    base = {"gen_ai.operation.name": GENAI_OPERATION, "gen_ai.request.model": model}
    meters.token_usage.record(input_tokens, {**base, "gen_ai.token.type": "input"})
    meters.token_usage.record(output_tokens, {**base, "gen_ai.token.type": "output"})
    meters.operation_duration.record(seconds, base)


def record_attempt(
    agent_id: str, skill: str, status: str, seconds: float, input_tokens: int, output_tokens: int, joules: float
) -> None:
    """Count one finished attempt (orchestrator): calls, latency, tokens and the energy estimate per agent (its
    registry id) and skill."""
    meters = _instruments()
    if meters is None:
        return
    where = {"scaleout.agent.id": agent_id, "scaleout.skill": skill}
    meters.attempt_duration.record(seconds, {**where, "scaleout.attempt.status": status})
    if input_tokens:
        meters.attempt_tokens.add(input_tokens, {**where, "gen_ai.token.type": "input"})
    if output_tokens:
        meters.attempt_tokens.add(output_tokens, {**where, "gen_ai.token.type": "output"})
    if joules:
        meters.attempt_energy.add(joules, where)


def record_skill(agent: str, skill: str, outcome: str, seconds: float) -> None:
    """Count one skill run on an agent (``outcome``: completed, failed, rejected) and its latency."""
    meters = _instruments()
    if meters is None:
        return
    meters.skill_duration.record(
        seconds, {"scaleout.agent.name": agent, "scaleout.skill": skill, "scaleout.skill.outcome": outcome}
    )


# -- setup -------------------------------------------------------------------------------------------------------


def otel_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when the standard ``OTEL_*`` variables ask for telemetry (an exporter or an OTLP endpoint named) and
    ``OTEL_SDK_DISABLED`` does not forbid it."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        if any(value in _ON_VALUES for value in _exporters(env, name, "")):
            return True
    return any(env.get(name, "").strip() for name in _ENDPOINTS)


def _exporters(env: Mapping[str, str], name: str, default: str) -> list[str]:
    return [v.strip().lower() for v in env.get(name, default).split(",") if v.strip()]


def configure(
    service_name: str, *, force: bool = False, environ: Mapping[str, str] | None = None, console: Any = None
) -> bool:
    """Install the OpenTelemetry SDK as the global tracer and meter providers when ``force`` (``--otel``) or the
    ``OTEL_*`` variables ask for it; returns whether telemetry is on. Nothing is sent anywhere otherwise.

    Exporters come from ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``, the default; ``console``:
    one JSON object per line on stdout, or ``console``; ``none``); the OTLP exporter reads its own
    ``OTEL_EXPORTER_OTLP_*`` variables. ``OTEL_SERVICE_NAME`` overrides ``service_name``. Raises
    ``OtelSetupError`` when the SDK is not installed or an exporter name is unknown.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or not (force or otel_requested(env)):
        return False
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        raise OtelSetupError(
            "telemetry was asked for (--otel or OTEL_* variables) but the OpenTelemetry SDK is not installed: "
            "pip install 'scaleout[otel]' (or unset the OTEL_* variables and drop --otel)"
        ) from None
    out = console or sys.stdout
    resource = Resource.create({"service.name": service_name}).merge(OTELResourceDetector().detect())
    tracer_provider = TracerProvider(resource=resource)
    for name in _exporters(env, "OTEL_TRACES_EXPORTER", "otlp"):
        if name == "console":  # one span per line, written as it ends
            exporter = ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")
            tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif name == "otlp":
            tracer_provider.add_span_processor(BatchSpanProcessor(_otlp("trace_exporter", "OTLPSpanExporter")))
        elif name != "none":
            raise OtelSetupError(f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp, console or none")
    readers = []
    for name in _exporters(env, "OTEL_METRICS_EXPORTER", "otlp"):
        if name == "console":
            formatter = lambda m: m.to_json(indent=None) + "\n"  # noqa: E731
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=out, formatter=formatter)))
        elif name == "otlp":
            readers.append(PeriodicExportingMetricReader(_otlp("metric_exporter", "OTLPMetricExporter")))
        elif name != "none":
            raise OtelSetupError(f"OTEL_METRICS_EXPORTER={name!r} is not supported: use otlp, console or none")
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    install(tracer_provider, meter_provider)
    return True


def _otlp(module: str, name: str) -> Any:
    """An OTLP/HTTP exporter (``opentelemetry-exporter-otlp-proto-http``, in the ``otel`` extra)."""
    try:
        exporters = __import__(f"opentelemetry.exporter.otlp.proto.http.{module}", fromlist=[name])
    except ImportError:
        raise OtelSetupError(
            "the OTLP exporter is not installed: pip install 'scaleout[otel]' (or set OTEL_TRACES_EXPORTER and "
            "OTEL_METRICS_EXPORTER to console or none)"
        ) from None
    return getattr(exporters, name)()
