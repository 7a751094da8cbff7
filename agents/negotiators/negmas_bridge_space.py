"""NegMAS outcome spaces and utility functions seen as scaleout issues and ``Utility`` objects, and back.

Needs the ``negotiation`` extra (``pip install 'scaleout[negotiation]'``); nothing outside the bridge modules
imports NegMAS, so the core install runs without it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.negotiators.utility import ENUMERATE_LIMIT, OutcomeSpace, Utility, outcome_space
from protocol.negotiation import MAX_ISSUE_VALUES, Issue, Offer

NEGMAS_MISSING = (
    "the NegMAS bridge needs the optional 'negotiation' extra (negmas 0.16 and negmas-genius-agents): "
    "pip install 'scaleout[negotiation]'"
)

try:  # the only place NegMAS is imported: a missing extra gives one clear message
    from negmas.outcomes import make_issue, make_os
    from negmas.preferences import BaseUtilityFunction, LinearAdditiveUtilityFunction, UtilityFunction
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test without the extra
    raise ImportError(NEGMAS_MISSING) from exc

__all__ = [
    "NEGMAS_MISSING",
    "IssueMap",
    "issue_map",
    "NegmasUtility",
    "ScaleoutUfun",
    "negmas_outcome_space",
    "CONTINUOUS_LEVELS",
]

CONTINUOUS_LEVELS = 21  # a continuous NegMAS issue becomes this many evenly spaced values
_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class IssueMap:
    """How a NegMAS outcome space maps onto scaleout issues: numeric issues keep their values, categorical ones
    become indices 0..n-1; a categorical issue with more than 1,000 values is split into two index digits
    (``<name>_hi``, ``<name>_lo``), whose combinations past the last value are not allowed."""

    issues: list[Issue]
    negmas_values: tuple[tuple[Any, ...], ...]
    """Per NegMAS issue: its values in our grid order (numeric: sorted; categorical: its own order)."""
    digits: tuple[int, ...]
    """Per NegMAS issue: 1, or 2 when split into hi/lo index digits (base ``MAX_ISSUE_VALUES``)."""
    continuous: tuple[bool, ...]

    def to_offer(self, outcome: Sequence[Any]) -> Offer:
        """A NegMAS outcome (tuple) as an offer on our grid (continuous values snap to the nearest level)."""
        values: dict[str, float] = {}
        column = 0
        for k, value in enumerate(outcome):
            index = self._index(k, value)
            if self.digits[k] == 2:
                hi, lo = divmod(index, MAX_ISSUE_VALUES)
                values[self.issues[column].name] = float(hi)
                values[self.issues[column + 1].name] = float(lo)
            else:
                values[self.issues[column].name] = float(self.issues[column].values[index])
            column += self.digits[k]
        return Offer(values=values)

    def to_outcome(self, offer: Offer) -> tuple[Any, ...]:
        """An offer on our grid as a NegMAS outcome."""
        return tuple(self.outcome_of_row(np.array([offer.values[i.name] for i in self.issues])))

    def outcome_of_row(self, row: np.ndarray) -> list[Any]:
        """One outcome row (columns in ``issues`` order) as a NegMAS outcome; None where the row is not allowed."""
        out: list[Any] = []
        column = 0
        for k, values in enumerate(self.negmas_values):
            if self.digits[k] == 2:
                index = int(row[column]) * MAX_ISSUE_VALUES + int(row[column + 1])
            else:
                index = int(np.searchsorted(self.issues[column].values, row[column]))
            out.append(values[index] if index < len(values) else None)
            column += self.digits[k]
        return out

    def _index(self, k: int, value: Any) -> int:
        values = self.negmas_values[k]
        if self.continuous[k]:
            return int(np.argmin(np.abs(np.asarray(values, dtype=float) - float(value))))
        try:
            return values.index(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a value of NegMAS issue {k} ({values[:8]}...)") from None


def _name(raw: str, taken: set[str]) -> str:
    name = _NAME.sub("_", str(raw).lower()).strip("_")[:56] or "issue"
    if not name[0].isalpha():
        name = f"i_{name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values)


def issue_map(negmas_issues: Sequence[Any], *, levels: int = CONTINUOUS_LEVELS) -> IssueMap:
    """Our issues for NegMAS issues (``nmi.outcome_space.issues``); names are made valid (lower case, ``_``)."""
    issues: list[Issue] = []
    negmas_values: list[tuple[Any, ...]] = []
    digits: list[int] = []
    continuous: list[bool] = []
    taken: set[str] = set()
    for issue in negmas_issues:
        name = _name(issue.name, taken)
        if issue.is_continuous():
            grid = np.linspace(float(issue.min_value), float(issue.max_value), levels)
            values: tuple[Any, ...] = tuple(float(v) for v in grid)
            ours = list(values)
        else:
            values = tuple(issue.all)
            ordered = _numeric(values) and len(set(values)) == len(values)
            if ordered:
                values = tuple(sorted(values))
            ours = [float(v) for v in values] if ordered else [float(i) for i in range(len(values))]
        continuous.append(bool(issue.is_continuous()))
        if len(ours) < 2:
            raise ValueError(f"NegMAS issue {issue.name!r} has one value; every issue needs at least two")
        if len(ours) <= MAX_ISSUE_VALUES:
            labels = None if _numeric(values) else [str(v)[:64] for v in values]  # categorical: name each index
            if labels is not None and (len(set(labels)) != len(labels) or not all(labels)):
                labels = None
            issues.append(Issue(name=name, values=ours, labels=labels))
            digits.append(1)
        elif len(ours) <= MAX_ISSUE_VALUES**2:
            high = math.ceil(len(ours) / MAX_ISSUE_VALUES)
            issues.append(Issue(name=f"{name[:60]}_hi", values=[float(i) for i in range(high)]))
            issues.append(Issue(name=f"{name[:60]}_lo", values=[float(i) for i in range(MAX_ISSUE_VALUES)]))
            digits.append(2)
        else:
            raise ValueError(f"NegMAS issue {issue.name!r} has {len(ours)} values; at most 10^6 are supported")
        negmas_values.append(values)
    if len(issues) > 32:
        raise ValueError(f"the outcome space has {len(issues)} issues after mapping; at most 32 are supported")
    return IssueMap(issues, tuple(negmas_values), tuple(digits), tuple(continuous))


class NegmasUtility(Utility):
    """A NegMAS utility function as a scaleout ``Utility``: scores are affinely normalised to [0, 1] over the
    outcome space (orderings and comparisons with the reservation value are unchanged). Linear additive ufuns
    are evaluated vectorised per issue; any other ufun outcome by outcome, once per outcome (cached)."""

    def __init__(self, ufun: BaseUtilityFunction, imap: IssueMap) -> None:
        self.ufun = ufun
        self.map = imap
        self.issues = imap.issues
        self.names = [i.name for i in imap.issues]
        self.space = outcome_space(imap.issues)
        self._cache: dict[tuple[float, ...], float] = {}
        self._index = [{v: k for k, v in enumerate(i.values)} for i in imap.issues]
        self._sizes = tuple(len(i.values) for i in imap.issues)
        self._linear_tables: list[np.ndarray] | None = None
        if isinstance(ufun, LinearAdditiveUtilityFunction) and all(d == 1 for d in imap.digits):
            self._linear_tables = [
                float(w) * np.array([float(fun(v)) for v in values])
                for w, fun, values in zip(ufun.weights, ufun.values, imap.negmas_values, strict=True)
            ]
        raw = self._raw(self.space.points)
        ok = np.isfinite(raw)
        self.low = float(raw[ok].min()) if ok.any() else 0.0
        self.span = max(float(raw[ok].max()) - self.low, 1e-12) if ok.any() else 1.0
        self._space_scores = np.where(ok, (raw - self.low) / self.span, -1.0)
        self.zero = -self.low / self.span
        self._space_scores.setflags(write=False)
        reserved = ufun.reserved_value
        finite = reserved is not None and math.isfinite(float(reserved))
        self.reservation = min(max((float(reserved) - self.low) / self.span, 0.0), 1.0) if finite else 0.0

    def __call__(self, offer: Offer) -> float:
        """Normalised utility of one offer (a table look-up when the outcome space is enumerated)."""
        if self.space.complete:
            try:
                idx = [table[offer.values[name]] for table, name in zip(self._index, self.names, strict=True)]
            except KeyError:
                return -1.0
            return float(self._space_scores[np.ravel_multi_index(idx, self._sizes)])
        return super().__call__(offer)

    def scores(self, points: np.ndarray) -> np.ndarray:
        """Normalised utilities of outcome rows; rows that are no NegMAS outcome score -1."""
        if points is self.space.points:
            return self._space_scores
        if self.space.complete and len(points):
            idx = [np.searchsorted(i.values, points[:, k]) for k, i in enumerate(self.issues)]
            on_grid = np.ones(len(points), dtype=bool)
            for k, i in enumerate(self.issues):
                clipped = np.minimum(idx[k], len(i.values) - 1)
                on_grid &= np.asarray(i.values)[clipped] == points[:, k]
                idx[k] = clipped
            return np.where(on_grid, self._space_scores[np.ravel_multi_index(idx, self._sizes)], -1.0)
        raw = self._raw(points)
        return np.where(np.isfinite(raw), (raw - self.low) / self.span, -1.0)

    def allowed(self, points: np.ndarray) -> np.ndarray:
        """Rows that are NegMAS outcomes (all of them, unless a large categorical issue was split)."""
        return np.asarray(self.scores(points) > -1.0)

    def _raw(self, points: np.ndarray) -> np.ndarray:
        if self._linear_tables is not None:
            total = np.full(len(points), float(getattr(self.ufun, "_bias", 0.0) or 0.0))
            for k, (issue, table) in enumerate(zip(self.issues, self._linear_tables, strict=True)):
                total += table[np.searchsorted(issue.values, points[:, k])]
            return total
        out = np.empty(len(points))
        for r, row in enumerate(points):
            key = tuple(float(v) for v in row)
            value = self._cache.get(key)
            if value is None:
                outcome = self.map.outcome_of_row(row)
                value = float("nan") if None in outcome else float(self.ufun(tuple(outcome)))
                if len(self._cache) < 4 * ENUMERATE_LIMIT:
                    self._cache[key] = value
            out[r] = value if math.isfinite(value) else np.nan
        return out


def negmas_outcome_space(issues: Sequence[Issue]) -> Any:
    """Our issues as a NegMAS outcome space (each issue's grid values, as floats, in order)."""
    return make_os([make_issue(values=list(i.values), name=i.name) for i in issues])


class ScaleoutUfun(UtilityFunction):
    """A scaleout ``Utility`` as a NegMAS utility function over ``negmas_outcome_space(utility.issues)``: the same
    numbers (-1 outside the hard limits), evaluated once, vectorised, for the whole grid when it is enumerable."""

    def __init__(self, utility: Utility, **kwargs: Any) -> None:
        super().__init__(
            outcome_space=negmas_outcome_space(utility.issues), reserved_value=utility.reservation, **kwargs
        )
        self.utility = utility
        space: OutcomeSpace = outcome_space(utility.issues)
        scores = utility.scores(space.points)
        self.table = {tuple(float(v) for v in row): float(s) for row, s in zip(space.points, scores, strict=True)}

    def eval(self, offer: Any) -> float:
        """Utility of a NegMAS outcome (the reservation value for None)."""
        if offer is None:
            return float(self.reserved_value)
        key = tuple(float(v) for v in offer)
        value = self.table.get(key)
        if value is None:
            value = self.utility(Offer(values=dict(zip(self.utility.names, key, strict=True))))
        return value

    def to_dict(self, python_class_identifier: str = "__python_class__") -> dict[str, Any]:
        """Not serialisable: a live scaleout utility (NegMAS calls this only to save a tournament)."""
        raise NotImplementedError("ScaleoutUfun wraps a live scaleout Utility and cannot be serialised")
