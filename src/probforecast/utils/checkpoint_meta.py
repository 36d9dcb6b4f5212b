"""What a probforecast checkpoint is for, and a safe check of a checkpoint file before use.

``ForecastModule.on_save_checkpoint`` stores ``checkpoint["probforecast"]`` = the forecaster's
class and data geometry (target_dim, context/prediction length); loading it into another
forecaster class or another ``target_dim`` then fails with one line saying so, instead of a
wall of ``state_dict`` key/size mismatches. Checkpoints are read with ``weights_only=True``:
the only non-tensor objects we store (the DataModule's option dataclasses) are allow-listed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from probforecast.data.errors import DataError

META_KEY = "probforecast"
GEOMETRY = ("target_dim", "context_length", "prediction_length")


def register_safe_globals() -> None:
    """Allow our plain option dataclasses (saved in the DataModule's hyperparameters) under
    ``torch.load(weights_only=True)``; nothing executable is allowed."""
    from probforecast.data.loading import GeneratorOptions, SyntheticOptions
    from probforecast.data.synthetic.mixing import SyntheticSourceOptions

    torch.serialization.add_safe_globals(
        [SyntheticOptions, GeneratorOptions, SyntheticSourceOptions]
    )


def forecaster_meta(forecaster: torch.nn.Module) -> dict[str, object]:
    """``{"forecaster": "pkg.Class", "target_dim": ..., ...}`` for the checkpoint."""
    cls = type(forecaster)
    meta: dict[str, object] = {"forecaster": f"{cls.__module__}.{cls.__qualname__}"}
    for key in GEOMETRY:
        value = getattr(forecaster, key, None)
        if isinstance(value, int):
            meta[key] = value
    return meta


def check_compatible(stored: dict | None, forecaster: torch.nn.Module, source: str) -> None:
    """Raise ``DataError`` when a checkpoint's meta names another forecaster class or geometry."""
    if stored is None:
        return  # checkpoints written before the meta existed: Lightning's own checks apply
    current = forecaster_meta(forecaster)
    if stored.get("forecaster") != current["forecaster"]:
        raise DataError(
            f"checkpoint {source} holds a {stored.get('forecaster')} model, but the config builds "
            f"a {current['forecaster']}; use the config the checkpoint was trained with"
        )
    for key in GEOMETRY:
        if key in stored and key in current and stored[key] != current[key]:
            raise DataError(
                f"checkpoint {source} was trained with {key}={stored[key]}, but the data gives "
                f"{key}={current[key]}; use the dataset and settings it was trained with"
            )


def check_checkpoint_file(path: str | Path) -> None:
    """Raise ``DataError`` unless ``path`` is a readable Lightning checkpoint (loaded with
    ``weights_only=True``, memory-mapped, so nothing in it is executed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} does not exist; pass a .ckpt file, 'best' or 'last'")
    register_safe_globals()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DataError(
            f"checkpoint {path} cannot be read safely as a probforecast checkpoint ({reason}); "
            "pass a .ckpt file written by `probforecast fit`"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(
            f"checkpoint {path} is not a Lightning checkpoint (no 'state_dict' entry); pass a "
            ".ckpt file written by `probforecast fit`"
        )
