"""Fixtures for the model-backend tests: one process-wide copy of the bundled weights, fresh engines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import anyio
import anyio.to_thread
import pytest

from agents.llm.engine import Engine
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.pool import ModelPool, default_model_path


@pytest.fixture(scope="session")
def model_pool() -> Iterator[ModelPool]:
    pool = ModelPool()
    yield pool
    pool.clear()


@pytest.fixture(scope="session")
def weights(model_pool: ModelPool) -> NativeModel:
    return model_pool.weights(default_model_path())


@pytest.fixture
def engine(weights: NativeModel) -> Iterator[Engine]:
    eng = Engine(weights, ContextConfig(n_ctx=2048, n_seq=8, n_batch=256), max_queue=4)
    yield eng
    eng.close()


async def _wait_done(job: Job, limit_s: float = 30.0) -> Job:
    with anyio.fail_after(limit_s):
        await anyio.to_thread.run_sync(job.done.wait, abandon_on_cancel=True)
    return job


@pytest.fixture
def wait_done() -> Callable[..., Awaitable[Job]]:
    """``await wait_done(job)``: wait, bounded, until the engine has finished ``job``."""
    return _wait_done
