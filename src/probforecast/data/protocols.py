"""Split protocols: which train / validation / test windows a dataset gets, and the options each
protocol reads (``ForecastDataModule``'s ``protocol`` and split options; see its docstring).

A protocol name in force is ``rolling``, ``ett`` or ``ratio`` (a dataset's registry default),
``gls_paper`` or ``probts_ett`` / ``probts_ratio``. Setting an option the protocol in force does
not read is a ``DataError`` naming it, never a silent no-op.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from probforecast.data.errors import DataError
from probforecast.data.splits import (
    Split,
    border_split,
    consecutive_split,
    ett_borders,
    probts_split,
    ratio_borders,
    rolling_split,
)

_STEPS_PER_HOUR = {"h": 1, "H": 1, "15min": 4, "15T": 4}
SplitProtocol = Literal["default", "gls_paper", "probts"]
PROTOCOLS: tuple[str, ...] = ("default", "gls_paper", "probts")
#: ProbTS' ``test_rolling_length`` default, which VolDy-VAE's runs use for validation and test.
PROBTS_ROLLING_LENGTH = 96
#: ``ett`` / ``ratio``: at most this many evenly spaced validation windows by default.
DEFAULT_MAX_VAL_WINDOWS = 32
_BORDER_OPTIONS = {"val_stride", "test_stride", "max_val_windows", "max_test_windows"}
#: The split options each protocol reads; setting any other one is an error.
READS: dict[str, set[str]] = {
    "rolling": {"num_val_windows"},
    "ett": _BORDER_OPTIONS,
    "ratio": _BORDER_OPTIONS | {"split_ratios"},
    "gls_paper": {"num_test_windows"},
    "probts_ett": {"val_stride", "test_stride"},
    "probts_ratio": {"val_stride", "test_stride", "split_ratios"},
}


@dataclass(frozen=True)
class SplitOptions:
    """The user's split options (``None``: the protocol's default)."""

    split_ratios: tuple[float, ...] | None = None
    val_stride: int | None = None
    test_stride: int | None = None
    max_val_windows: int | None = None
    max_test_windows: int | None = None
    num_val_windows: int | None = None
    num_test_windows: int | None = None


def resolve_protocol(requested: str, registry_protocol: str, dataset_name: str) -> str:
    """The protocol in force for ``requested`` (``default``, ``gls_paper``, ``probts``) on a
    dataset whose registry protocol is ``registry_protocol``."""
    if requested == "gls_paper":
        return "gls_paper"
    if requested == "probts":
        if registry_protocol not in ("ett", "ratio"):
            raise DataError(
                f"protocol 'probts' needs LTSF borders (a dataset whose default protocol is "
                f"'ett' or 'ratio'); dataset {dataset_name!r} uses {registry_protocol!r}"
            )
        return f"probts_{registry_protocol}"
    return registry_protocol


def check_protocol_options(protocol: str, options: SplitOptions, dataset_name: str) -> None:
    """Raise one ``DataError`` naming every set option that ``protocol`` does not read."""
    given = asdict(options)
    ignored = sorted(k for k, v in given.items() if v is not None and k not in READS[protocol])
    if ignored:
        reads = ", ".join(sorted(READS[protocol])) or "none of these options"
        raise DataError(
            f"dataset {dataset_name!r} uses the {protocol!r} split protocol, which does "
            f"not read data.{', data.'.join(ignored)}; remove it (the {protocol!r} protocol "
            f"reads: {reads})"
        )


def make_split(
    protocol: str,
    options: SplitOptions,
    *,
    dataset_name: str,
    freq: str,
    prediction_length: int,
    paper_windows: int | None,
    length: int,
    train_length: int,
    test_lengths: list[int],
) -> Split:
    """The windows of ``protocol`` on a series of ``length`` steps (``train_length`` and
    ``test_lengths``: the GluonTS train entry and rolling test entries; ``paper_windows``: the
    registry's ``gls_paper`` window count)."""
    check_protocol_options(protocol, options, dataset_name)
    q = prediction_length
    if protocol == "gls_paper":
        windows = options.num_test_windows or paper_windows
        if windows is None:
            raise DataError(
                f"protocol 'gls_paper' on dataset {dataset_name!r}: the registry has no "
                "paper window count for it; set data.num_test_windows"
            )
        return consecutive_split(min(test_lengths), q, windows)
    if protocol == "rolling":
        return rolling_split(train_length, test_lengths, q, options.num_val_windows or 1)
    if protocol in ("ett", "probts_ett"):
        steps = _STEPS_PER_HOUR.get(freq)
        if steps is None:
            raise DataError(f"ETT protocol supports hourly and 15-minute data; got freq {freq!r}")
        borders = ett_borders(length, steps)
    else:
        borders = ratio_borders(length, options.split_ratios or (0.7, 0.1, 0.2))
    if protocol.startswith("probts"):
        return probts_split(
            borders,
            q,
            val_rolling_length=options.val_stride or PROBTS_ROLLING_LENGTH,
            test_rolling_length=options.test_stride or PROBTS_ROLLING_LENGTH,
        )
    max_val = (
        DEFAULT_MAX_VAL_WINDOWS if options.max_val_windows is None else options.max_val_windows
    )
    return border_split(
        borders,
        q,
        val_stride=options.val_stride or q,
        test_stride=options.test_stride or q,
        max_val_windows=max_val,
        max_test_windows=options.max_test_windows,
    )
