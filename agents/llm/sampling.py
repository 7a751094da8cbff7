"""Token choice from one logits row: greedy or seeded temperature sampling, optionally under a constraint.

Constrained choice is exact and cheap: the top candidates are checked first, and the whole vocabulary is
scanned only when none of them is allowed. Greedy picks the best allowed token; sampling rejects disallowed
draws and redraws from the rest, which is exactly sampling from the masked distribution.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agents.llm.constraints import Constraint

__all__ = ["TokenSampler", "NoAllowedToken"]

_TOP_K = (32, 1024)  # candidates checked, best first, before the whole vocabulary is scanned
_REDRAWS = 16


class NoAllowedToken(RuntimeError):
    """The constraint forbids every token: the grammar is stuck (schema and output disagree)."""


class TokenSampler:
    """Chooses tokens for one generation; ``temperature == 0`` is greedy, otherwise seeded sampling."""

    def __init__(self, temperature: float = 0.0, seed: int = 0) -> None:
        self.temperature = temperature
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
        for k in (min(k, len(logits) - 1) for k in _TOP_K):
            top = np.argpartition(-logits, k)[:k]
            top = top[np.argsort(-logits[top], kind="stable")]
            ok = constraint.check(top)
            if ok.any():
                return int(top[int(np.argmax(ok))])
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
