"""The one way to rebuild a trained ``ForecastModule`` from a checkpoint file.

A checkpoint written by ``ForecastModule`` (CLI, API or script alike) carries

* every ``ForecastModule`` argument, in ``hyper_parameters`` (``save_hyperparameters``), and
* ``checkpoint["probforecast"]["forecaster_spec"]``: the forecaster's stable class path and
  constructor arguments (``Forecaster.init_spec()``), beside the class/geometry check of
  ``utils/checkpoint_meta.py``. Not in ``hyper_parameters``: ``probforecast test --ckpt_path``
  (LightningCLI) parses those as ``ForecastModule`` arguments and rejects any other key.

so ``ForecastModule.load(path)`` needs neither the config nor the data. Checkpoints written
before the spec existed are rebuilt from the ``forecaster`` argument, from the spec the old
API stored at the top level, or from the run's ``config.yaml`` plus the data facts.
The file is always read with ``torch.load(weights_only=True)``
(:func:`probforecast.utils.checkpoint_meta.read_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import yaml

from probforecast.data.datamodule import ForecastDataModule
from probforecast.models.base import DATA_FACTS, Forecaster
from probforecast.utils.checkpoint_meta import META_KEY, read_checkpoint
from probforecast.utils.init_spec import UnencodableArgument, build_from_spec

if TYPE_CHECKING:
    from probforecast.models.module import ForecastModule

log = logging.getLogger(__name__)

FORECASTER_SPEC_KEY = "forecaster_spec"
LEGACY_SPEC_KEY = "probforecast_forecaster"  # top-level key of the API's checkpoints before
MODULE_COMPONENTS = ("forecaster", "optimizer", "lr_scheduler")
Module = TypeVar("Module", bound="ForecastModule")


def forecaster_spec(forecaster: Forecaster) -> dict[str, Any] | None:
    """The spec stored in checkpoints; ``None`` (logged) when an argument is not plain data."""
    try:
        return forecaster.init_spec()
    except UnencodableArgument as err:
        log.info("checkpoints of %s carry no forecaster spec: %s", type(forecaster).__name__, err)
        return None


def load_module(
    cls: type[Module],
    path: str | Path,
    *,
    forecaster: Forecaster | None = None,
    datamodule: ForecastDataModule | None = None,
    map_location: str | torch.device = "cpu",
) -> Module:
    """``cls`` rebuilt from ``path`` with every saved setting and its weights, in eval mode."""
    return module_from_checkpoint(
        cls,
        read_checkpoint(path, map_location),
        Path(path),
        forecaster=forecaster,
        datamodule=datamodule,
        map_location=map_location,
    )


def module_from_checkpoint(
    cls: type[Module],
    checkpoint: dict,
    path: Path,
    *,
    forecaster: Forecaster | None = None,
    datamodule: ForecastDataModule | None = None,
    map_location: str | torch.device = "cpu",
) -> Module:
    """``load_module`` on a checkpoint already read from ``path``."""
    if forecaster is None:
        forecaster = rebuild_forecaster(checkpoint, path, datamodule)
    module = cls(forecaster, **module_settings(checkpoint))
    module.on_load_checkpoint(checkpoint)  # class/geometry check and the training seed
    module.load_state_dict(checkpoint["state_dict"])
    return module.to(map_location).eval()


def module_settings(checkpoint: dict) -> dict[str, Any]:
    """Every ``ForecastModule`` argument saved in the checkpoint's hyperparameters, except the
    components rebuilt separately (forecaster, optimizer and scheduler factories)."""
    from probforecast.models.module import ForecastModule

    accepted = set(inspect.signature(ForecastModule).parameters) - set(MODULE_COMPONENTS)
    saved = dict(checkpoint.get("hyper_parameters") or {})
    return {k: v for k, v in saved.items() if k in accepted}


def rebuild_forecaster(
    checkpoint: dict, path: Path, datamodule: ForecastDataModule | None = None
) -> Forecaster:
    """The untrained forecaster the checkpoint's weights belong to (module docstring)."""
    spec = (checkpoint.get(META_KEY) or {}).get(FORECASTER_SPEC_KEY)
    spec = spec or checkpoint.get(LEGACY_SPEC_KEY)
    if spec is None:
        spec = _spec_from_run_config(checkpoint, path, datamodule)
    forecaster = build_from_spec(spec)
    if not isinstance(forecaster, Forecaster):
        raise ValueError(f"{path}: {spec['class_path']} is not a probforecast Forecaster")
    return forecaster


def _spec_from_run_config(
    checkpoint: dict, path: Path, datamodule: ForecastDataModule | None
) -> dict[str, Any]:
    config = _find_run_config(path)
    if config is None:
        raise ValueError(
            f"{path} carries no forecaster spec and no config.yaml was found in its run "
            "directory: pass forecaster= (an instance of the trained architecture)"
        )
    spec = yaml.safe_load(config.read_text())["model"]["forecaster"]
    if datamodule is None:
        datamodule = datamodule_from_checkpoint(checkpoint, path)
    init = dict(spec.get("init_args") or {})
    init.update({fact: getattr(datamodule, fact) for fact in DATA_FACTS})  # linked by the CLI
    return {"class_path": spec["class_path"], "init_args": init}


def _find_run_config(path: Path) -> Path | None:
    """``config.yaml`` of a CLI run: ``<root>/checkpoints/x.ckpt`` -> ``<root>/config.yaml``."""
    for folder in (path.parent, path.parent.parent):
        candidate = folder / "config.yaml"
        if candidate.is_file():
            return candidate
    return None


def datamodule_from_checkpoint(checkpoint: dict, path: Path) -> ForecastDataModule:
    """The ``ForecastDataModule`` the checkpoint was trained on, from its saved arguments."""
    hparams = checkpoint.get("datamodule_hyper_parameters")
    if hparams is None:
        raise ValueError(f"{path} holds no data module arguments: pass datamodule=")
    return datamodule_from_hparams(dict(hparams))


def datamodule_from_hparams(hparams: dict[str, Any]) -> ForecastDataModule:
    """``ForecastDataModule`` from the arguments a checkpoint saved (unknown keys dropped; option
    blocks saved as plain dicts turned back into their dataclasses)."""
    hints = typing.get_type_hints(ForecastDataModule.__init__)
    kwargs = {}
    for name in inspect.signature(ForecastDataModule).parameters:
        if name not in hparams:
            continue
        value = hparams[name]
        if isinstance(value, dict):
            hint = hints.get(name)
            options = [
                t
                for t in (hint, *typing.get_args(hint))
                if isinstance(t, type) and dataclasses.is_dataclass(t)
            ]
            value = options[0](**value) if options else value
        kwargs[name] = value
    return ForecastDataModule(**kwargs)
