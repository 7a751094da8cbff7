"""Token choice from one logits row: greedy or seeded temperature sampling, optionally under a constraint.

Constrained choice is exact and cheap: greedy checks the argmax alone, then ever larger sets of top
candidates (every token at or above a logit that at least k tokens reach, so ties are never cut), and scans the whole
vocabulary only when none of them is allowed. It returns exactly the masked argmax (lowest id among ties),
which ``exhaustive=True`` computes the slow way for comparison. Sampling rejects disallowed draws and redraws
from the rest, which is exactly sampling from the masked distribution.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agents.llm.constraints import Constraint

__all__ = ["TokenSampler", "NoAllowedToken"]

_TOP_K = (64, 4096, 32768)  # candidate set sizes checked, after the argmax alone, before the whole vocabulary
_REDRAWS = 16


def _threshold(logits: npt.NDArray[np.float32], k: int) -> float:
    """A logit that at least ``k`` tokens reach: the k-th largest of the maxima of ``64 * k`` blocks (every
    block's maximum is a token, so k blocks give k tokens). Far cheaper than partitioning the whole vocabulary
    (262k logits), and at most the k-th largest logit, so the tokens reaching it include the top k."""
    n = len(logits)
    blocks = 64 * k
    if n < 2 * blocks:
        return float(np.partition(logits, n - k)[n - k])
    size = -(-n // blocks)
    if n == size * blocks:
        padded = logits
    else:
        padded = np.full(size * blocks, -np.inf, dtype=logits.dtype)
        padded[:n] = logits
    maxima = padded.reshape(blocks, size).max(axis=1)
    return float(np.partition(maxima, blocks - k)[blocks - k])


class NoAllowedToken(RuntimeError):
    """The constraint forbids every token: the grammar is stuck (schema and output disagree)."""


class TokenSampler:
    """Chooses tokens for one generation; ``temperature == 0`` is greedy, otherwise seeded sampling.

    ``exhaustive=True`` masks the whole vocabulary at every constrained step: the slow reference that the
    fast path must match token for token.
    """

    def __init__(self, temperature: float = 0.0, seed: int = 0, *, exhaustive: bool = False) -> None:
        self.temperature = temperature
        self.exhaustive = exhaustive
        self._rng = np.random.default_rng(seed)
        self.fallbacks = 0  # how often the whole vocabulary had to be scanned

    def pick(self, logits: npt.NDArray[np.float32], constraint: Constraint | None = None) -> int:
        if constraint is None:
            return self._greedy(logits) if self.temperature == 0 else self._draw(logits)
        ids = constraint.allowed_ids()
        if ids is not None:
            if len(ids) == 0:
                raise NoAllowedToken("the constraint allows no token")
            sub = logits[ids]
            k = int(np.argmax(sub)) if self.temperature == 0 else self._draw_index(sub)
            return int(ids[k])
        return (
            self._constrained_greedy(logits, constraint)
            if self.temperature == 0
            else self._constrained_draw(logits, constraint)
        )

    @staticmethod
    def _greedy(logits: npt.NDArray[np.float32]) -> int:
        return int(np.argmax(logits))

    def _probs(self, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        z = logits.astype(np.float64) / self.temperature
        z -= z.max()
        return np.exp(z)

    def _draw_index(self, logits: npt.NDArray[np.float32]) -> int:
        p = self._probs(logits)
        return self._choose(p)

    def _choose(self, weights: npt.NDArray[np.float64]) -> int:
        cum = np.cumsum(weights)
        x = self._rng.random() * cum[-1]
        return int(min(np.searchsorted(cum, x, side="right"), len(cum) - 1))

    def _draw(self, logits: npt.NDArray[np.float32]) -> int:
        return self._draw_index(logits)

    def _constrained_greedy(self, logits: npt.NDArray[np.float32], constraint: Constraint) -> int:
        if not self.exhaustive:
            best = int(np.argmax(logits))  # lowest id among the maxima
            if constraint.check(np.asarray([best], dtype=np.int64))[0]:
                return best
            n = len(logits)
            for k in _TOP_K:
                if k >= n:
                    break
                top = np.flatnonzero(logits >= _threshold(logits, k))  # ascending ids, ties included
                ok = constraint.check(top)
                if ok.any():
                    allowed = top[ok]
                    return int(allowed[int(np.argmax(logits[allowed]))])
        self.fallbacks += 1
        mask = constraint.full_mask()
        if not mask.any():
            raise NoAllowedToken("the grammar allows no token; the output cannot continue")
        return int(np.argmax(np.where(mask, logits, -np.inf)))

    def _constrained_draw(self, logits: npt.NDArray[np.float32], constraint: Constraint) -> int:
        weights = self._probs(logits)
        for _ in range(_REDRAWS):
            if weights.sum() <= 0:
                break
            token = self._choose(weights)
            if constraint.check(np.asarray([token]))[0]:
                return token
            weights[token] = 0.0
        self.fallbacks += 1
        weights = np.where(constraint.full_mask(), weights, 0.0)
        if weights.sum() <= 0:
            raise NoAllowedToken("the grammar allows no token; the output cannot continue")
        return self._choose(weights)
