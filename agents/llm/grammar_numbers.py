"""GBNF for JSON numbers within bounds: exact integer ranges, and number ranges with integral bounds.

Every expression here spells plain decimal JSON numbers (no exponent, no leading zeros), at most ``DIGITS``
digits before and after the point, so the grammar stays small and every value fits a float.
"""

from __future__ import annotations

import math

__all__ = ["DIGITS", "int_range", "number_range", "optional_chain"]

DIGITS = 16  # most digits in an integral part and in a fraction (as llama.cpp's converter)
_LIMIT = 10**DIGITS - 1  # largest magnitude that DIGITS digits spell


def optional_chain(unit: str, n: int) -> str:
    """``unit`` repeated 0..n times as nested optionals: ``(u (u (u)?)?)?``. Meant for small n."""
    if n <= 0:
        return ""
    return "(" + f"{unit} (" * (n - 1) + unit + ")?" * n


def _digits(k: int) -> str:
    return " ".join(["[0-9]"] * k)


def _same_length(a: str, b: str) -> str:
    """Decimal strings of len(a) == len(b) digits from a to b (a <= b), leading digit as given."""
    if a == b:
        return f'"{a}"'
    i = next(j for j in range(len(a)) if a[j] != b[j])
    prefix = f'"{a[:i]}" ' if i else ""
    da, db, ra, rb = int(a[i]), int(b[i]), a[i + 1 :], b[i + 1 :]
    k = len(ra)
    low_full = ra == "0" * k
    high_full = rb == "9" * k
    alts: list[str] = []
    if not low_full:
        alts.append(f'"{da}" {_same_length(ra, "9" * k)}')
    lo, hi = (da if low_full else da + 1), (db if high_full else db - 1)
    if lo <= hi:
        alts.append(" ".join(x for x in (f"[{lo}-{hi}]" if lo < hi else f'"{lo}"', _digits(k)) if x))
    if not high_full:
        alts.append(f'"{db}" {_same_length("0" * k, rb)}')
    body = alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"
    return (prefix + body).strip()


def _uint_range(lo: int, hi: int) -> str:
    """Non-negative integers lo..hi (0 <= lo <= hi <= _LIMIT), no leading zeros."""
    alts: list[str] = []
    for length in range(len(str(lo)), len(str(hi)) + 1):
        first = 0 if length == 1 else 10 ** (length - 1)
        a, b = max(lo, first), min(hi, 10**length - 1)
        if a <= b:
            alts.append(_same_length(str(a), str(b)))
    return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"


def int_range(lo: int | None, hi: int | None) -> str:
    """GBNF for the JSON integers lo..hi (None: unbounded, up to DIGITS digits). Raises if the range is empty."""
    low = -_LIMIT if lo is None else max(lo, -_LIMIT)
    high = _LIMIT if hi is None else min(hi, _LIMIT)
    if low > high:
        raise ValueError(f"no integer of at most {DIGITS} digits lies between {lo} and {hi}")
    alts: list[str] = []
    if high >= 0:
        alts.append(_uint_range(max(low, 0), high))
    if low < 0:
        alts.append(f'"-" {_uint_range(max(-high, 1), -low)}')
    return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"


_FRACTION = '"." [0-9] ' + optional_chain("[0-9]", DIGITS - 1)
_ZERO_FRACTION = '("." "0" ' + optional_chain('"0"', DIGITS - 1) + ")?"
_NONZERO_FRACTION = '"." ' + optional_chain('"0"', DIGITS - 1) + " [1-9] " + optional_chain("[0-9]", DIGITS - 1)


def _magnitudes(lo: int, lo_open: bool, hi: int | None, hi_open: bool) -> list[str]:
    """Plain decimals x >= 0 with lo <(=) x <(=) hi, for integral lo, hi (hi None: up to DIGITS digits)."""
    alts: list[str] = []
    start = lo
    if lo_open:
        alts.append(f'"{lo}" {_NONZERO_FRACTION}')  # lo < x < lo + 1
        start = lo + 1
    top = _LIMIT if hi is None else hi - 1
    if start <= top:
        alts.append(f"{_uint_range(start, top)} ({_FRACTION})?")
    if hi is not None and not hi_open and hi >= start:
        alts.append(f'"{hi}" {_ZERO_FRACTION}')
    return alts


def _integral(x: float | None) -> bool:
    return x is None or (math.isfinite(x) and float(x).is_integer())


def _clip(x: int | None, lower: bool) -> int | None:
    """A bound past DIGITS digits: the digit cap bounds instead, unless the bound excludes every spelled number."""
    if x is None or abs(x) <= _LIMIT:
        return x
    if (x > 0) == lower:
        raise ValueError(f"bound {x} lies past the {DIGITS} digits the grammar spells")
    return None


def number_range(lo: float | None, lo_open: bool, hi: float | None, hi_open: bool) -> tuple[str, bool]:
    """GBNF for JSON numbers between the bounds, and whether it admits only numbers within them.

    Exact when every bound is integral; otherwise the grammar spans the integral hull (floor(lo)..ceil(hi))
    and the caller must check the bounds after decoding. Raises if no number satisfies the bounds.
    """
    exact = _integral(lo) and _integral(hi)
    if not exact:
        lo_open = lo_open and _integral(lo)
        hi_open = hi_open and _integral(hi)
        lo = None if lo is None or not math.isfinite(lo) else math.floor(lo)
        hi = None if hi is None or not math.isfinite(hi) else math.ceil(hi)
    low = _clip(None if lo is None else int(lo), lower=True)
    high = _clip(None if hi is None else int(hi), lower=False)
    lo_open, hi_open = lo_open and low is not None, hi_open and high is not None
    if low is not None and high is not None and (low > high or (low == high and (lo_open or hi_open))):
        raise ValueError(f"no number lies between {lo} and {hi}")
    alts: list[str] = []
    if high is None or high > 0 or (high == 0 and not hi_open):
        nonneg_open = low is not None and low >= 0 and lo_open
        alts += _magnitudes(max(low or 0, 0), nonneg_open, high, hi_open)
    if low is None or low < 0:
        # x < 0 is spelled -y, y in (max(-high, 0), -low]: open at 0, so "-0" never stands for an excluded zero
        y_lo, y_lo_open = (-high, hi_open) if high is not None and high < 0 else (0, True)
        neg = _magnitudes(y_lo, y_lo_open, None if low is None else -low, lo_open)
        alts.append('"-" (' + " | ".join(neg) + ")")
    return ("(" + " | ".join(alts) + ")" if len(alts) > 1 else alts[0]), exact
