"""Experiment loggers with probforecast's defaults."""

from __future__ import annotations

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` without its unset ``anonymous`` argument.

    Lightning always passes ``anonymous=None`` to ``wandb.init``; current wandb versions warn
    that the setting "has no effect" whenever the key is present, on every run. The key is
    dropped unless ``anonymous=True`` was asked for. Everything else is Lightning's logger.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
