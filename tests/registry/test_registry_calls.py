"""record_calls: many observed calls in one transaction, the same statistics as one record_call at a time."""

from __future__ import annotations

import random
import threading

import pytest

from registry import CallReport, InvalidQuery, Registry
from registry.calls import MAX_CALLS


def test_batch_equals_one_call_at_a_time(db_url: str, card) -> None:
    rng = random.Random(5)
    calls = [(rng.random() < 0.8, round(rng.uniform(0.001, 2.0), 4), rng.randint(0, 500)) for _ in range(40)]
    with Registry(db_url, latency_window=16) as reg:
        one, many = reg.register_card(card("one")), reg.register_card(card("many"))
        for success, latency, tokens in calls:
            reg.record_call(one.id, success=success, latency_s=latency, tokens=tokens)
        batch = [{"agent_id": many.id, "success": s, "latency_s": lat, "tokens": tok} for s, lat, tok in calls]
        assert reg.record_calls(batch[:25]) == 25 and reg.record_calls(batch[25:]) == 15
        assert reg.get(one.id).stats == reg.get(many.id).stats
        assert reg.get(many.id).stats.calls == 40


def test_mixed_agents_models_and_unknown_ids(registry: Registry, card) -> None:
    a, b = registry.register_card(card("a")), registry.register_card(card("b"))
    recorded = registry.record_calls(
        [
            CallReport(agent_id=a.id, success=True, latency_s=0.1, tokens=3),
            {"agent_id": "gone", "success": True, "latency_s": 0.1, "tokens": 0},  # deregistered meanwhile: skipped
            {"agent_id": b.id, "success": False, "latency_s": 0.3},
            {"agent_id": a.id, "success": False, "latency_s": 0.5, "tokens": 4},
        ]
    )
    assert recorded == 3
    sa, sb = registry.get(a.id).stats, registry.get(b.id).stats
    assert (sa.calls, sa.successes, sa.tokens, sa.latency_p50_ms, sa.latency_p95_ms) == (2, 1, 7, 100.0, 500.0)
    assert (sb.calls, sb.successes, sb.tokens, sb.latency_p50_ms) == (1, 0, 0, 300.0)
    assert registry.record_calls([]) == 0


def test_invalid_batch_writes_nothing(registry: Registry, card) -> None:
    a = registry.register_card(card("a"))
    good = {"agent_id": a.id, "success": True, "latency_s": 0.1, "tokens": 1}
    for bad in ({"agent_id": a.id, "success": True, "latency_s": -1}, {"agent_id": "", "success": True}, {"x": 1}):
        with pytest.raises(InvalidQuery, match=r"call #1 is not a valid CallReport"):
            registry.record_calls([good, bad])
    with pytest.raises(InvalidQuery, match="send them in batches"):
        registry.record_calls([good] * (MAX_CALLS + 1))
    assert registry.get(a.id).stats.calls == 0


def test_concurrent_batches_lose_no_call(db_url: str, card) -> None:
    with Registry(db_url) as reg:
        ids = [reg.register_card(card(n)).id for n in ("a", "b", "c")]
        errors: list[BaseException] = []

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(10):
                    reg.record_calls(
                        [{"agent_id": rng.choice(ids), "success": True, "latency_s": 0.01} for _ in range(20)]
                    )
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors and not any(t.is_alive() for t in threads)
        assert sum(reg.get(i).stats.calls for i in ids) == 4 * 10 * 20
