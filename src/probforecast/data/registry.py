"""Registry of the named datasets, each with its protocol from the literature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SourceKind = Literal["gluonts_tar", "ltsf_csv", "m4_csv", "synthetic", "generator"]
ProtocolKind = Literal["rolling", "ett", "ratio"]


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset.

    Attributes:
        name: registry key (``--data.dataset``).
        kind: how the raw files are read.
        files: paths relative to the data root.
        freq: pandas frequency string.
        prediction_length: the protocol's default horizon ``Q`` (overridable in the config).
        protocol: ``rolling`` (GluonTS: train part + rolling test windows from the test entries),
            ``ett`` (12/4/4 months train/val/test) or ``ratio`` (7:1:2 chronological).
        source: where the official copy comes from (quoted when the file is missing).
        gluonts_name: name in ``gluonts.dataset.repository`` for the opt-in download.
        gls_paper_windows: the number of consecutive test (and validation) windows of the GLS
            paper's protocol (its Table 2, "#rolling"), the default of
            ``ForecastDataModule(protocol="gls_paper")``.
    """

    name: str
    kind: SourceKind
    files: tuple[str, ...]
    freq: str
    prediction_length: int
    protocol: ProtocolKind
    source: str
    gluonts_name: str | None = None
    gls_paper_windows: int | None = None


_LTSF = "the Autoformer/LTSF benchmark (github.com/thuml/Autoformer, long_term_forecast data)"
_ETT = "github.com/zhouhaoyi/ETDataset (ETT-small)"
_GENERATED = "generated (probforecast.data.synthetic, options in data.generator; no files)"

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            "exchange_rate_nips",
            "gluonts_tar",
            ("exchange_rate_nips/exchange_rate_nips.tar.gz",),
            "B",
            30,
            "rolling",
            "GluonTS' dataset repository (gluonts.dataset.repository 'exchange_rate_nips', "
            "from github.com/mbohlkeschneider/gluon-ts mv_release datasets/)",
            gluonts_name="exchange_rate_nips",
            gls_paper_windows=5,
        ),
        DatasetInfo(
            "m4_hourly",
            "m4_csv",
            ("m4_hourly/Hourly-train.csv.gz", "m4_hourly/Hourly-test.csv.gz"),
            "h",
            48,
            "rolling",
            "github.com/Mcompetitions/M4-methods (Dataset/Train, Dataset/Test)",
            gluonts_name="m4_hourly",
            gls_paper_windows=7,
        ),
        DatasetInfo("etth1", "ltsf_csv", ("ETTh1/ETTh1.csv.gz",), "h", 96, "ett", _ETT),
        DatasetInfo("etth2", "ltsf_csv", ("ETTh2/ETTh2.csv.gz",), "h", 96, "ett", _ETT),
        DatasetInfo("ettm1", "ltsf_csv", ("ETTm1/ETTm1.csv.gz",), "15min", 96, "ett", _ETT),
        DatasetInfo(
            "weather", "ltsf_csv", ("weather/weather.csv.gz",), "10min", 96, "ratio", _LTSF
        ),
        DatasetInfo(
            "exchange_ltsf",
            "ltsf_csv",
            ("exchange_rate/exchange_rate.csv.gz",),
            "D",
            96,
            "ratio",
            _LTSF,
        ),
        DatasetInfo(
            "illness_ltsf",
            "ltsf_csv",
            ("illness/national_illness.csv",),
            "W-TUE",
            36,
            "ratio",
            "the Autoformer/LTSF benchmark (github.com/thuml/Autoformer, long_term_forecast "
            "data: illness/national_illness.csv; 966 weekly rows, a date column and 7 series, "
            "CDC ILINet)",
        ),
        DatasetInfo("synthetic", "synthetic", (), "h", 24, "rolling", "built in (no files)"),
        *(
            DatasetInfo(name, "generator", (), "h", 24, "rolling", _GENERATED)
            for name in (
                "kernelsynth",
                "lmc",
                "dynlmc_drift",
                "dynlmc_lag",
                "dynlmc_regime",
                "dynlmc_combined",
            )
        ),
    ]
}


def dataset_names() -> list[str]:
    return sorted(DATASETS)
