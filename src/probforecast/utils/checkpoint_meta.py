"""What a probforecast checkpoint is for, and the one safe way to read a checkpoint file.

``ForecastModule.on_save_checkpoint`` stores ``checkpoint["probforecast"]`` = the forecaster's
class (by its stable name, ``probforecast.utils.init_spec.stable_class_path``) and data
geometry (target_dim, context/prediction length); loading it into another forecaster class
or another ``target_dim`` then fails with one line saying so, instead of a wall of
``state_dict`` key/size mismatches. Checkpoints are read with ``weights_only=True``:
the only non-tensor objects we store (the DataModule's option dataclasses) are allow-listed.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from probforecast.data.errors import DataError
from probforecast.utils.init_spec import resolve_class_path, stable_class_path

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
    meta: dict[str, object] = {"forecaster": stable_class_path(type(forecaster))}
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
    if not _same_class(stored.get("forecaster"), type(forecaster)):
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


def _same_class(stored: object, cls: type) -> bool:
    """The stored name resolves to ``cls`` (a checkpoint written when the class lived in another
    module still matches through its stable public name)."""
    if not isinstance(stored, str):
        return False
    try:
        return resolve_class_path(stored) is cls
    except ValueError:
        return False


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict, read with ``torch.load(weights_only=True)`` (nothing in the file is
    executed); ``DataError`` naming the file when it is missing, unreadable or not a Lightning
    checkpoint. Every probforecast reader (CLI, API, ``ForecastModule.load``, CW-Gen's JMCE
    loading, the scripts) goes through here."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} not found; pass a .ckpt file, 'best' or 'last'")
    register_safe_globals()
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DataError(
            f"checkpoint {path} cannot be read safely as a probforecast checkpoint with "
            f"torch.load(weights_only=True) ({reason}); pass a .ckpt file written by "
            "`probforecast fit`"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(
            f"checkpoint {path} is not a Lightning checkpoint (no 'state_dict' entry); pass a "
            ".ckpt file written by `probforecast fit`"
        )
    return checkpoint


def check_checkpoint_file(path: str | Path) -> None:
    """Raise ``DataError`` unless ``path`` is a readable Lightning checkpoint."""
    read_checkpoint(path)
