"""Thin typed wrappers over llama-cpp-python's low-level API: a loaded model and a multi-sequence context."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.errors import ModelBackendMissing

__all__ = ["ContextConfig", "NativeModel", "NativeContext", "DecodeError", "KvCacheFull"]

_backend_lock = threading.Lock()
_backend_ready = False
_log = logging.getLogger("agents.llm.llamacpp")
_log_callback: Any = None


def _forward_log(level: int, text: bytes, _user: Any) -> None:
    if level == 4:  # GGML_LOG_LEVEL_ERROR; debug, info and warnings stay quiet
        _log.error("%s", text.decode("utf-8", errors="replace").rstrip())


def _llama() -> Any:
    """Import llama_cpp once, quiet its logging and initialise the backend."""
    global _backend_ready
    try:
        import llama_cpp
        from llama_cpp import _logger
    except ModuleNotFoundError as exc:
        raise ModelBackendMissing(
            f"the llama.cpp model backend is not installed ({exc}); install it with pip install 'scaleout[llm]' "
            "(or ./scripts/setup in a checkout), or give the agent a Scripted brain"
        ) from None

    with _backend_lock:
        if not _backend_ready:
            global _log_callback
            _logger.set_verbose(False)
            _log_callback = llama_cpp.llama_log_callback(_forward_log)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_ready = True
    return llama_cpp


class DecodeError(RuntimeError):
    """llama_decode failed for a reason other than a full KV cache."""


class KvCacheFull(DecodeError):
    """llama_decode found no free KV cells for the batch; free some sequences and retry."""


class NativeModel:
    """One GGUF's weights in memory (loaded once), with its tokenizer. Shared by any number of contexts."""

    def __init__(self, path: Path, *, repack: bool = False) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model not found at {path}; pass an existing .gguf path")
        lib = _llama()
        self.path = path
        params = lib.llama_model_default_params()
        # Repacked weights switch to 4-row GEMM kernels once a batch has >= 4 rows, so a sequence's logits
        # would depend on how many others share its step; plain weights keep small batches exact.
        params.use_extra_bufts = repack
        self._model = lib.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise ValueError(f"llama.cpp could not load {path}; is it a valid GGUF file?")
        self.vocab = lib.llama_model_get_vocab(self._model)
        self.n_vocab: int = lib.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = lib.llama_model_n_ctx_train(self._model)
        self.add_bos: bool = bool(lib.llama_vocab_get_add_bos(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._tok_lock = threading.Lock()
        self.eog: frozenset[int] = frozenset(t for t in range(self.n_vocab) if lib.llama_vocab_is_eog(self.vocab, t))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def handle(self) -> Any:
        return self._model

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = True) -> list[int]:
        """Text to token ids (BOS first when the model wants one and ``add_bos``)."""
        lib = _llama()
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (lib.llama_token * cap)()
        n = lib.llama_tokenize(self.vocab, data, len(data), arr, cap, add_bos and self.add_bos, special)
        if n < 0:
            arr = (lib.llama_token * -n)()
            n = lib.llama_tokenize(self.vocab, data, len(data), arr, -n, add_bos and self.add_bos, special)
        return list(arr[:n])

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (control tokens render as nothing)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        lib = _llama()
        with self._tok_lock:
            n = lib.llama_token_to_piece(self.vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
            out = self._piece_buf.raw[: max(0, n)]
        self._pieces[token] = out
        return out

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._model:
            _llama().llama_model_free(self._model)
            self._model = None


@dataclass(frozen=True)
class ContextConfig:
    """Size of one batching context: KV cells, sequence slots, batch size, threads.

    By default the ``n_ctx`` cells are one cache shared by every sequence (a shared prefix is one set of cells,
    and one job may use nearly all of them). ``kv_streams=True`` gives each sequence its own stream of
    ``seq_cells`` cells instead: attention then spans only the sequence's own cells, which keeps long prompts
    fast under load, but one job is capped at ``seq_cells`` and a prefix shared across slots is copied.
    """

    n_ctx: int = 8192
    n_seq: int = 32
    n_batch: int = 512
    n_threads: int = 0  # 0 = every core
    flash_attn: bool = True  # off: slower, but batching changes greedy outputs less often (docs/inference.md)
    kv_streams: bool = False

    def threads(self) -> int:
        return self.n_threads or max(1, os.cpu_count() or 1)

    @property
    def seq_cells(self) -> int:
        """The most KV cells one sequence can hold: ``n_ctx``, or with ``kv_streams`` its stream's size
        (``n_ctx`` rounded up to 256, divided by ``n_seq``, rounded up to 256 again: llama.cpp's ``n_ctx_seq``)."""
        if not self.kv_streams:
            return self.n_ctx

        def pad(n: int) -> int:
            return -(-n // 256) * 256

        return pad(pad(self.n_ctx) // self.n_seq)


class NativeContext:
    """A llama.cpp context for ``n_seq`` sequences (one unified KV cache, or a stream each with ``kv_streams``)
    and one reusable batch.

    Not thread-safe: the engine's thread is its only user.
    """

    def __init__(self, model: NativeModel, config: ContextConfig) -> None:
        lib = _llama()
        self.model = model
        self.config = config
        params = lib.llama_context_default_params()
        params.n_ctx = config.n_ctx
        params.n_batch = config.n_batch
        params.n_ubatch = config.n_batch
        params.n_seq_max = config.n_seq
        params.n_outputs_max = config.n_seq  # at most one logits row per sequence per step
        params.n_threads = config.threads()
        params.n_threads_batch = config.threads()
        params.kv_unified = not config.kv_streams  # unified: shared prefixes are shared cells (seq_cp is free)
        params.swa_full = True  # keeps partial seq_rm valid on sliding-window layers (Gemma 3)
        params.no_perf = True
        params.flash_attn_type = 1 if config.flash_attn else 0
        self._ctx = lib.llama_init_from_model(model.handle, params)
        if not self._ctx:
            raise ValueError(f"llama.cpp could not create a context with {config}; try a smaller n_ctx")
        self._mem = lib.llama_get_memory(self._ctx)
        size = lib.llama_n_ctx_seq(self._ctx)
        if config.kv_streams and size != config.seq_cells:  # the engine admits jobs by seq_cells
            lib.llama_free(self._ctx)
            raise RuntimeError(f"llama.cpp sized each KV stream {size} cells, ContextConfig expects {config.seq_cells}")
        self._batch = lib.llama_batch_init(config.n_batch, 0, 1)
        n = config.n_batch
        self._tokens = np.ctypeslib.as_array(self._batch.token, shape=(n,))
        self._pos = np.ctypeslib.as_array(self._batch.pos, shape=(n,))
        self._logits = np.ctypeslib.as_array(self._batch.logits, shape=(n,))
        self._seq_ids = [self._batch.seq_id[i] for i in range(n)]  # one single-entry seq-id array per row
        np.ctypeslib.as_array(self._batch.n_seq_id, shape=(n,))[:] = 1
        self.n_tokens = 0

    def clear_batch(self) -> None:
        self.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token to the batch; returns its index (the logits row when ``logits``)."""
        i = self.n_tokens
        b = self._batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        self.n_tokens = i + 1
        return i

    def add_chunk(self, tokens: Sequence[int], pos: int, seq: int, logits: bool) -> int:
        """Append consecutive tokens of one sequence from position ``pos``, logits on the last one only when
        ``logits``; returns the last token's batch index (its logits row). Raises ``ValueError`` past ``n_batch``."""
        i, n = self.n_tokens, len(tokens)
        if n == 0 or i + n > self.config.n_batch:
            raise ValueError(f"a chunk of {n} tokens does not fit the batch ({i} of {self.config.n_batch} used)")
        self._tokens[i : i + n] = tokens
        self._pos[i : i + n] = np.arange(pos, pos + n)
        self._logits[i : i + n] = 0
        self._logits[i + n - 1] = logits
        for ids in self._seq_ids[i : i + n]:
            ids[0] = seq
        self.n_tokens = i + n
        return i + n - 1

    def decode(self) -> None:
        """Run the batch. Raises ``KvCacheFull`` (state unchanged) or ``DecodeError``."""
        self._batch.n_tokens = self.n_tokens
        rc = _llama().llama_decode(self._ctx, self._batch)
        if rc == 1:
            raise KvCacheFull(f"no free KV cells for a batch of {self.n_tokens} tokens (n_ctx={self.config.n_ctx})")
        if rc != 0:
            raise DecodeError(f"llama_decode returned {rc}")

    def logits(self, index: int) -> npt.NDArray[np.float32]:
        """The logits row of batch index ``index`` (a view, valid until the next decode)."""
        ptr = _llama().llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> bool:
        return bool(_llama().llama_memory_seq_rm(self._mem, seq, p0, p1))

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        _llama().llama_memory_seq_cp(self._mem, src, dst, p0, p1)

    def share_prefix(self, src: int, dst: int, n: int) -> None:
        """Sequence ``dst`` (empty) holds ``src``'s first ``n`` positions after this: the same cells in a
        unified cache; with ``kv_streams`` a copy of ``src``'s whole stream (made at the next decode; llama.cpp
        copies streams only whole) cut back to ``n``."""
        if self.config.kv_streams:
            self.seq_cp(src, dst, -1, -1)
            self.seq_rm(dst, n, -1)
        else:
            self.seq_cp(src, dst, 0, n)

    def seq_pos_max(self, seq: int) -> int:
        return int(_llama().llama_memory_seq_pos_max(self._mem, seq))

    def close(self) -> None:
        lib = _llama()
        if self._ctx:
            lib.llama_batch_free(self._batch)
            lib.llama_free(self._ctx)
            self._ctx = None
