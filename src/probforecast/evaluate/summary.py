"""Mean ± standard deviation over seeds, the paper-band check and grouping of records.

The one place where benchmark scripts summarise results, so every table uses the same
estimator: the **sample** standard deviation (``n - 1``) over seeds, 0 for a single seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """``(mean, sample std)`` of ``values``; the std is 0 for one value.

    Raises:
        ValueError: no value, or a NaN among them (a failed run must not vanish in a mean).
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("mean_std needs at least one value; got none")
    if any(math.isnan(v) for v in data):
        raise ValueError(f"mean_std got NaN among {data}: a run produced no score")
    return statistics.fmean(data), statistics.stdev(data) if len(data) > 1 else 0.0


def format_mean_std(values: Iterable[float], digits: int = 4, sep: str = " ± ") -> str:
    """``"0.0123 ± 0.0004"``: :func:`mean_std` with ``digits`` decimals."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}{sep}{std:.{digits}f}"


def in_band(values: Sequence[float], reference: tuple[float, float], width: float = 2.0) -> bool:
    """Whether our mean lies within ``width`` combined standard deviations of a reference.

    ``|mean(values) - ref_mean| <= width * sqrt(std(values)^2 + ref_std^2)``, with ``std`` the
    sample std over our seeds (:func:`mean_std`) and ``reference = (ref_mean, ref_std)`` as
    published (e.g. a paper's mean ± std).
    """
    mean, std = mean_std(values)
    ref_mean, ref_std = reference
    if ref_std < 0:
        raise ValueError(f"a reference std must be >= 0; got {ref_std}")
    return abs(mean - ref_mean) <= width * math.sqrt(std**2 + ref_std**2)


def group_records(
    records: Iterable[Mapping[str, Any]], keys: Sequence[str]
) -> dict[tuple[Any, ...], list[Mapping[str, Any]]]:
    """Records grouped by the values of ``keys`` (e.g. everything but the seed), in first-seen
    order of the groups and of the records inside each.

    Raises:
        KeyError: a record lacks one of ``keys`` (names the key and the record).
    """
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in records:
        missing = [k for k in keys if k not in record]
        if missing:
            raise KeyError(f"record lacks {missing} (grouping by {list(keys)}): {dict(record)}")
        groups.setdefault(tuple(record[k] for k in keys), []).append(record)
    return groups
