"""``JMCESpec``: the JMCE prior of a CW generator as one typed setting.

CW-Diff, CW-Flow and CW-FlowTS take ``jmce: JMCESpec`` instead of a flat list of ``jmce_*``
arguments. In a config it is a nested block, validated field by field by the CLI::

    init_args:
      prior: jmce
      training: two_stage
      jmce:
        checkpoint: runs/jmce/etth1/checkpoints/best.ckpt
        d_model: 512
        n_heads: 8
        d_ff: 1024

and on the command line ``--model.forecaster.init_args.jmce.checkpoint PATH``.
"""

from __future__ import annotations

from dataclasses import dataclass

from probforecast.models.cwgen.jmce import JMCE


@dataclass(frozen=True)
class JMCESpec:
    """Where a CW generator's JMCE comes from, its sizes and its loss settings.

    Attributes:
        checkpoint: ``ForecastModule`` ``.ckpt`` of a trained ``probforecast.models.JMCE``;
            required by ``training="two_stage"`` (loaded and frozen), refused by ``"e2e"``
            (trained jointly from scratch, as the official e2e scripts).
        d_model, n_heads, e_layers, d_layers, d_ff, dropout, label_len: the JMCE's
            architecture (``JMCE``'s arguments; must equal those of the checkpoint's run,
            which loading checks).
        cov_window: ``W`` of the sliding covariance target.
        lambda_min: eigenvalue floor: the JMCE loss's penalty threshold, ``high_dim``'s
            diagonal and the clamp of symmetric whitening.
        w_eig: weight of the eigenvalue penalty ``w_eig relu(lambda_min - eig)``.
        high_dim: ``Sigma = U^T U + lambda_min I`` (guaranteed floor) instead of ``L L^T``.
    """

    checkpoint: str | None = None
    d_model: int = 64
    n_heads: int = 4
    e_layers: int = 2
    d_layers: int = 1
    d_ff: int = 128
    dropout: float = 0.1
    label_len: int | None = None
    cov_window: int = 95
    lambda_min: float = 0.1
    w_eig: float = 50.0
    high_dim: bool = False

    def build(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str,
        num_time_features: int,
    ) -> JMCE:
        """The (untrained) ``JMCE`` these settings describe, for the given data facts."""
        return JMCE(
            target_dim,
            context_length,
            prediction_length,
            freq,
            num_time_features,
            d_model=self.d_model,
            n_heads=self.n_heads,
            e_layers=self.e_layers,
            d_layers=self.d_layers,
            d_ff=self.d_ff,
            dropout=self.dropout,
            label_len=self.label_len,
            cov_window=self.cov_window,
            lambda_min=self.lambda_min,
            w_eig=self.w_eig,
            high_dim=self.high_dim,
        )


LEGACY_JMCE_ARGUMENTS = {
    "jmce_checkpoint": "checkpoint",
    "jmce_d_model": "d_model",
    "jmce_n_heads": "n_heads",
    "jmce_e_layers": "e_layers",
    "jmce_d_layers": "d_layers",
    "jmce_d_ff": "d_ff",
    "jmce_dropout": "dropout",
    "jmce_high_dim": "high_dim",
    "cov_window": "cov_window",
    "lambda_min": "lambda_min",
    "w_eig": "w_eig",
}
"""The flat constructor arguments of 0.1 CW generators and their ``JMCESpec`` fields."""


def upgrade_legacy_jmce_arguments(init_args: dict[str, object]) -> dict[str, object]:
    """``init_args`` of a 0.1 CW generator spec (flat ``jmce_*``, ``cov_window``,
    ``lambda_min``, ``w_eig``) with those folded into ``jmce: JMCESpec``; other specs unchanged.

    A ``prior="standard"`` spec drops them (that prior has no JMCE; 0.1 ignored them).
    """
    legacy = {k: init_args[k] for k in LEGACY_JMCE_ARGUMENTS if k in init_args}
    if not legacy:
        return init_args
    rest = {k: v for k, v in init_args.items() if k not in legacy}
    if rest.get("prior", "jmce") == "standard":
        return rest
    if rest.get("training") == "e2e":
        legacy.pop("jmce_checkpoint", None)
    fields = {LEGACY_JMCE_ARGUMENTS[k]: v for k, v in legacy.items()}
    return {**rest, "jmce": JMCESpec(**fields)}  # type: ignore[arg-type]
