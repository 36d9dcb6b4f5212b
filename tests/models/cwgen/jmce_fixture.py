"""For the one-step config test: a two-stage CW config names a JMCE checkpoint that only exists
after a JMCE run, so build a (randomly initialised) one with the config's sizes and point the
config at it. Returns the extra CLI arguments (none for other configs)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import JMCE
from probforecast.models.module import ForecastModule


def jmce_checkpoint_args(
    config: Path, tmp_path: Path, data_root: Path | None = None, cache_dir: Path | None = None
) -> list[str]:
    cfg = yaml.safe_load(Path(config).read_text())
    init = cfg.get("model", {}).get("forecaster", {}).get("init_args", {}) or {}
    spec = dict(init.get("jmce") or {})
    if spec.pop("checkpoint", None) is None:
        return []
    data = dict(cfg["data"])
    if "synthetic" in data:
        data["synthetic"] = SyntheticOptions(**data["synthetic"])
    dm = ForecastDataModule(
        **data,
        root=None if data_root is None else str(data_root),
        cache_dir=str(cache_dir or tmp_path / "cache"),
    )
    jmce = JMCE(
        target_dim=dm.target_dim,
        context_length=dm.context_length,
        prediction_length=dm.prediction_length,
        freq=dm.freq,
        num_time_features=dm.num_time_features,
        **spec,  # the config's JMCE sizes and loss settings (JMCESpec's fields)
    )
    path = tmp_path / "jmce.ckpt"
    torch.save({"state_dict": ForecastModule(jmce, num_samples=2).state_dict()}, path)
    return ["--model.forecaster.init_args.jmce.checkpoint", str(path)]
