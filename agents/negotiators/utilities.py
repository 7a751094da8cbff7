"""Utilities beyond linear additive: outcome tables (categorical issues) and generalised additive utilities with
per-issue value functions (linear, piecewise-linear, table) and box terms, vectorised over outcome rows.

``utility_for`` turns any preference model (``agents.negotiators.preference_models``: linear, table, additive) into
the ``Utility`` that strategies, guardrails and analytics use. Every utility is normalised to [0, 1] over the issue
grid; hard ``limits`` and ``reservation`` work as for linear ones.
"""

from __future__ import annotations

import numpy as np

from agents.negotiators.preference_models import (
    MAX_BOXES,
    MAX_PIECES,
    MAX_TABLE_ENTRIES,
    AdditivePreferences,
    AnyPreferences,
    Box,
    LinearValue,
    PiecewiseValue,
    TableEntry,
    TablePreferences,
    TableValue,
    ValueFunction,
)
from agents.negotiators.utility import LinearUtility, Utility, outcome_space, within_limits
from protocol.negotiation import Issue

__all__ = [
    "TableUtility",
    "AdditiveUtility",
    "utility_for",
    # the preference models, re-exported: most callers need a model and its utility together
    "TableEntry",
    "TablePreferences",
    "LinearValue",
    "PiecewiseValue",
    "TableValue",
    "ValueFunction",
    "Box",
    "AdditivePreferences",
    "AnyPreferences",
    "MAX_TABLE_ENTRIES",
    "MAX_PIECES",
    "MAX_BOXES",
]

_MAX_CODE = 2**62  # table outcomes are numbered in an int64; larger grids need an additive utility
_GRIDS_KEPT = 8  # issue grids whose compiled table or range a preference model keeps


def utility_for(preferences: AnyPreferences, issues: list[Issue]) -> Utility:
    """The utility ``preferences`` define over ``issues``; ValueError saying what does not fit the issues."""
    if isinstance(preferences, TablePreferences):
        return TableUtility(preferences, issues)
    if isinstance(preferences, AdditivePreferences):
        return AdditiveUtility(preferences, issues)
    return LinearUtility(preferences, issues)


def _grid_index(grid: np.ndarray, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's index in the sorted ``grid`` and whether it is on the grid at all."""
    index = np.searchsorted(grid, column).clip(0, len(grid) - 1)
    return index, grid[index] == column


def _lookup(issue: Issue) -> dict[float | str, int]:
    """The index of each value of ``issue`` by the value and by its label."""
    found: dict[float | str, int] = {v: k for k, v in enumerate(issue.values)}
    found.update({label: k for k, label in enumerate(issue.labels or [])})
    return found


def _index_of(issue: Issue, value: float | str, where: str) -> int:
    try:
        return issue.values.index(issue.value_of(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _compile(
    preferences: TablePreferences, issues: list[Issue], strides: np.ndarray, total: int
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The table as sorted outcome codes and their values, and the range that normalises them."""
    lookups = [_lookup(i) for i in issues]
    index = np.empty((len(preferences.entries), len(issues)), dtype=np.int64)
    for k, entry in enumerate(preferences.entries):
        for j, (issue, lookup) in enumerate(zip(issues, lookups, strict=True)):
            found = lookup.get(entry.outcome[issue.name])
            index[k, j] = found if found is not None else _index_of(issue, entry.outcome[issue.name], f"entry {k}")
    codes = index @ strides
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    values = np.array([e.value for e in preferences.entries], dtype=float)[order]
    repeated = np.flatnonzero(codes[1:] == codes[:-1])
    if repeated.size:
        twice = sorted(int(k) for k in order[repeated[0] : repeated[0] + 2])
        raise ValueError(f"the table lists one outcome twice (entries {twice}); keep one of them")
    seen = values if len(codes) == total else np.append(values, preferences.default)
    low, high = (float(seen.min()), float(seen.max())) if preferences.normalise else (0.0, 1.0)
    if high <= low:
        raise ValueError("every outcome of the table has the same value; give at least two different values")
    return codes, values, low, high


class TableUtility(Utility):
    """A value per outcome, looked up by the outcome's number on the grid (vectorised: sorted codes, binary search)."""

    def __init__(self, preferences: TablePreferences, issues: list[Issue]) -> None:
        self.preferences = preferences
        self.issues = issues
        self.names = [i.name for i in issues]
        self.reservation = preferences.reservation
        keyed = list(preferences.entries[0].outcome)
        unknown = [n for n in keyed if n not in self.names]
        if unknown:
            raise ValueError(f"the table names issues {unknown} that the negotiation does not have ({self.names})")
        self.columns = [self.names.index(n) for n in keyed]
        table_issues = [issues[c] for c in self.columns]
        self.grids = [np.asarray(i.values, dtype=float) for i in table_issues]
        sizes = [len(i.values) for i in table_issues]
        total = int(np.prod(sizes, dtype=object))
        if total > _MAX_CODE:
            raise ValueError(f"a table over {total:.3g} outcomes is too large to index; use an additive utility")
        self.strides = np.array([int(np.prod(sizes[k + 1 :], dtype=object)) for k in range(len(sizes))], dtype=np.int64)
        key = tuple((i.name, tuple(i.values), tuple(i.labels or ())) for i in table_issues)
        if key not in preferences._compiled:  # built once per issue grid: a negotiator rebuilds utilities every move
            if len(preferences._compiled) >= _GRIDS_KEPT:
                preferences._compiled.clear()
            preferences._compiled[key] = _compile(preferences, table_issues, self.strides, total)
        self.codes, self.values, self.low, self.high = preferences._compiled[key]

    def raw(self, points: np.ndarray) -> np.ndarray:
        """The table's value of each row (``default`` for outcomes it does not list)."""
        code = np.zeros(len(points), dtype=np.int64)
        on_grid = np.ones(len(points), dtype=bool)
        for column, grid, stride in zip(self.columns, self.grids, self.strides, strict=True):
            index, hit = _grid_index(grid, points[:, column])
            code += index * stride
            on_grid &= hit
        position = np.searchsorted(self.codes, code).clip(0, len(self.codes) - 1)
        found = on_grid & (self.codes[position] == code)
        return np.where(found, self.values[position], self.preferences.default)

    def scores(self, points: np.ndarray) -> np.ndarray:
        """Normalised table values of outcome rows; rows outside the limits score -1."""
        utility = np.clip((self.raw(points) - self.low) / (self.high - self.low), 0.0, 1.0)
        return np.where(self.allowed(points), utility, -1.0)

    def allowed(self, points: np.ndarray) -> np.ndarray:
        """Which rows respect the hard limits."""
        return within_limits(points, self.names, self.preferences.limits)

    def describe(self) -> list[str]:
        """The issues and the best outcomes of the table."""
        lines = [
            f"- {i.name}: one of {', '.join(i.label_of(v) for v in i.values[:12])}"
            + (" ..." if len(i.values) > 12 else "")
            for i in self.issues
        ]
        best = sorted(self.preferences.entries, key=lambda e: -e.value)[:3]
        for entry in best:
            terms = ", ".join(f"{n}={v if isinstance(v, str) else f'{v:g}'}" for n, v in entry.outcome.items())
            value = (entry.value - self.low) / (self.high - self.low)
            lines.append(f"- a deal with {terms} is worth {value:.2f} to you")
        return lines


class AdditiveUtility(Utility):
    """Weighted per-issue value functions plus box terms, normalised to [0, 1] (exactly over the enumerated grid,
    over the deterministic sample when the grid is larger)."""

    def __init__(self, preferences: AdditivePreferences, issues: list[Issue]) -> None:
        self.preferences = preferences
        self.issues = issues
        self.names = [i.name for i in issues]
        self.reservation = preferences.reservation
        total = sum(preferences.weights.get(n, 0.0) for n in self.names)
        if total <= 0:
            raise ValueError(f"preferences weigh none of the issues {self.names}; give a weight to at least one")
        self.weights = np.array([preferences.weights.get(n, 0.0) / total for n in self.names])
        for k, box in enumerate(preferences.boxes):
            unknown = sorted(set(box.bounds) - set(self.names))
            if unknown:
                raise ValueError(f"box {k} bounds issues {unknown} that the negotiation does not have ({self.names})")
        self.functions = [preferences.functions.get(n, LinearValue()) for n in self.names]
        self.tables: list[tuple[np.ndarray, np.ndarray] | None] = []
        self.ranges: list[tuple[float, float]] = []
        for issue, function in zip(issues, self.functions, strict=True):
            self.tables.append(self._value_table(issue, function))
            on_grid = self._value(len(self.ranges), np.asarray(issue.values, dtype=float), normalised=False)
            self.ranges.append((float(on_grid.min()), float(on_grid.max())))
        self.low, self.high = 0.0, 1.0
        if preferences.boxes:  # the range over the outcome space, once per issue grid (utilities are rebuilt often)
            key = tuple((i.name, tuple(i.values)) for i in issues)
            if key not in preferences._ranges:
                raw = self.raw(outcome_space(issues).points)
                if len(preferences._ranges) >= _GRIDS_KEPT:
                    preferences._ranges.clear()
                preferences._ranges[key] = (float(raw.min()), float(raw.max()))
            self.low, self.high = preferences._ranges[key]
        elif not any(w > 0 and hi > lo for w, (lo, hi) in zip(self.weights, self.ranges, strict=True)):
            self.high = self.low
        if self.high <= self.low:
            raise ValueError(
                "these preferences value every outcome the same; give a weighted issue a value that varies"
            )

    @staticmethod
    def _value_table(
        issue: Issue, function: LinearValue | PiecewiseValue | TableValue
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if not isinstance(function, TableValue):
            return None
        values = np.full(len(issue.values), function.default, dtype=float)
        for key, value in function.values.items():
            values[_index_of(issue, key, f"value table of {issue.name!r}")] = value
        return np.asarray(issue.values, dtype=float), values

    def _value(self, k: int, column: np.ndarray, *, normalised: bool = True) -> np.ndarray:
        issue, function = self.issues[k], self.functions[k]
        if isinstance(function, LinearValue):
            share = (column - issue.low) / (issue.high - issue.low)
            value = share if function.increasing else 1.0 - share
        elif isinstance(function, PiecewiseValue):
            xs, ys = zip(*function.points, strict=True)
            value = np.interp(column, np.asarray(xs), np.asarray(ys))
        else:
            table = self.tables[k]
            assert table is not None
            index, hit = _grid_index(table[0], column)
            value = np.where(hit, table[1][index], function.default)
        if not normalised:
            return np.asarray(value, dtype=float)
        lo, hi = self.ranges[k]
        return (value - lo) / (hi - lo) if hi > lo else np.zeros(len(column))

    def raw(self, points: np.ndarray) -> np.ndarray:
        """The weighted sum of normalised issue values plus the bonuses of the boxes each row lies in."""
        total = np.zeros(len(points))
        for k, weight in enumerate(self.weights):
            if weight > 0:
                total += weight * self._value(k, points[:, k])
        for box in self.preferences.boxes:
            inside = np.ones(len(points), dtype=bool)
            for name, (lo, hi) in box.bounds.items():
                column = points[:, self.names.index(name)]
                inside &= (column >= lo) & (column <= hi)
            total += box.bonus * inside
        return total

    def scores(self, points: np.ndarray) -> np.ndarray:
        """Normalised utilities of outcome rows; rows outside the limits score -1."""
        utility = np.clip((self.raw(points) - self.low) / (self.high - self.low), 0.0, 1.0)
        return np.where(self.allowed(points), utility, -1.0)

    def allowed(self, points: np.ndarray) -> np.ndarray:
        """Which rows respect the hard limits."""
        return within_limits(points, self.names, self.preferences.limits)

    def describe(self) -> list[str]:
        """Each weighted issue's value function and weight, then each box term."""
        lines = []
        for issue, function, weight in zip(self.issues, self.functions, self.weights, strict=True):
            if weight <= 0:
                continue
            if isinstance(function, LinearValue):
                how = f"{'higher' if function.increasing else 'lower'} is better for you"
            elif isinstance(function, PiecewiseValue):
                how = "worth " + ", ".join(f"{y:.2f} at {issue.label_of(x)}" for x, y in function.points[:8])
            else:
                ranked = sorted(function.values.items(), key=lambda kv: -kv[1])[:8]
                how = "worth " + ", ".join(f"{v:.2f} for {key}" for key, v in ranked)
            lines.append(f"- {issue.name}: {how} (weight {weight:.2f})")
        for box in self.preferences.boxes:
            where = " and ".join(f"{n} in [{lo:g}, {hi:g}]" for n, (lo, hi) in box.bounds.items())
            kind = "bonus" if box.bonus >= 0 else "penalty"
            lines.append(f"- {kind} {abs(box.bonus):.2f} when {where}" + (f": {box.label}" if box.label else ""))
        return lines
