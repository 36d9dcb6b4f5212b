r"""What CW-Diff and CW-Flow share: the prior (JMCE or standard), its training mode, loading
a trained JMCE, and the conditional network (spec-cwgen §3, §5-§7).

Axes: ``B`` windows, ``S`` samples, ``P`` history, ``Q`` horizon, ``N`` series.

* ``prior="jmce"``: ``N(mu_hat, Sigma_hat)`` from a JMCE applied to **each window's own
  history, on the fly** (never cached by batch index: spec §15.5).

  - ``training="two_stage"``: the JMCE is loaded from ``jmce.checkpoint`` (a ForecastModule
    checkpoint of ``probforecast.models.JMCE``; its stored arguments are checked first), frozen
    and kept in eval mode; ``whitening`` is ``symmetric`` (eigh, clamped at ``lambda_min``; the
    paper's default) or ``cholesky`` (triangular solve with the Cholesky factor of the same
    floored covariance, ``whitening.floored_cholesky``). The JMCE's weights (and arguments) are part of the CW
    model's own state, so a CW checkpoint reloads when the JMCE file has moved: the missing
    file is then only a warning, and using the prior before any weights were loaded is the
    error.
  - ``training="e2e"``: the JMCE is trained jointly, ``loss = (L_JMCE + L_gen) / 2``, Cholesky
    whitening without detaching so the generative loss reaches the JMCE (spec §7). No
    eigenvalue floor here, as the official e2e code (its floor is commented out): the floor
    needs ``eigh``, whose gradient is unstable at near-equal eigenvalues; the JMCE loss's
    penalty ``w_eig relu(lambda_min - eig)`` keeps the spectrum above ``lambda_min`` in
    training, and ``jmce.high_dim`` (``Sigma = U^T U + lambda_min I``) guarantees it.
* ``prior="standard"``: the "Raw" baseline, source ``N(0, I)``: same network and budget.

The network is a component (``network``: a ``class_path`` spec, contract in ``network.py``):
``ConditionalDenoiser`` by default, ``networks.TimeDiffNet`` (CW-TimeDiff) or
``networks.FlowTSNet`` (CW-FlowTS, with its own generator ``CWFlowTS``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import Forecaster
from probforecast.models.cwgen.denoiser import ConditionalDenoiser
from probforecast.models.cwgen.jmce import JMCE
from probforecast.models.cwgen.jmce_spec import JMCESpec, upgrade_legacy_jmce_arguments
from probforecast.models.cwgen.network import GeneratorNetwork, build_network
from probforecast.models.cwgen.optim import mark_jmce_parameters
from probforecast.models.cwgen.whitening import (
    CholeskyWhitening,
    IdentityWhitening,
    SymmetricWhitening,
    Whitening,
    floored_cholesky,
)
from probforecast.models.noise import SampleNoise
from probforecast.utils.checkpoint_meta import read_checkpoint

log = logging.getLogger(__name__)

Prior = Literal["jmce", "standard"]
Training = Literal["two_stage", "e2e"]
WhiteningKind = Literal["symmetric", "cholesky"]
PRIORS: tuple[str, ...] = get_args(Prior)
TRAININGS: tuple[str, ...] = get_args(Training)
WHITENINGS: tuple[str, ...] = get_args(WhiteningKind)


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}; got {value!r}")


def _missing_jmce_message(path: str) -> str:
    return (
        f"jmce.checkpoint {path!r} does not exist; train the JMCE first "
        "(probforecast fit --config configs/jmce/<dataset>.yaml) and pass its .ckpt, or load a "
        "CW-Diff / CW-Flow checkpoint (it holds the frozen JMCE's weights)"
    )


def load_jmce_state(jmce: JMCE, path: str) -> None:
    """Load ``forecaster.*`` weights of a ForecastModule checkpoint into ``jmce`` (one clear error
    when the file is missing, is not a JMCE checkpoint, was trained with other arguments
    (``JMCE.check_config``, before any weight is copied) or its sizes differ)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(_missing_jmce_message(str(file)))
    state = read_checkpoint(file)["state_dict"]
    prefix = "forecaster."
    own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    extra = own.get("_extra_state")
    if isinstance(extra, dict):
        jmce.check_config(extra.get("jmce_config", {}), f"jmce.checkpoint {str(file)!r}")
    expected = jmce.state_dict()
    missing = sorted(set(expected) - set(own) - {"_extra_state"})
    unexpected = sorted(set(own) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"jmce.checkpoint {str(file)!r} is not a checkpoint of this JMCE: missing "
            f"{missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected "
            f"{unexpected[:3]}{'...' if len(unexpected) > 3 else ''}; it must be a ForecastModule "
            "checkpoint whose forecaster is probforecast.models.JMCE"
        )
    wrong = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in own.items()
        if isinstance(v, Tensor) and v.shape != expected[k].shape
    ]
    if wrong:
        raise ValueError(
            f"jmce.checkpoint {str(file)!r} was trained with other sizes ({wrong[0]}"
            f"{' and more' if len(wrong) > 1 else ''}); set the jmce fields (and the data's "
            "target_dim / context / prediction length) to those of the JMCE run"
        )
    jmce.load_state_dict(own)


def _check_jmce_training(spec: JMCESpec, training: str, whitening: str) -> None:
    """The JMCE settings a training mode needs (one clear error otherwise)."""
    if training == "e2e" and whitening != "cholesky":
        raise ValueError(
            "training='e2e' back-propagates through the whitening: set "
            "whitening='cholesky' (the differentiable triangular path, spec §7)"
        )
    if training == "two_stage" and spec.checkpoint is None:
        raise ValueError(
            "training='two_stage' needs jmce.checkpoint: the .ckpt of a JMCE run "
            "(probforecast fit --config configs/jmce/<dataset>.yaml); or use "
            "training='e2e' (joint) or prior='standard' (Raw)"
        )
    if training == "e2e" and spec.checkpoint is not None:
        raise ValueError(
            "training='e2e' trains the JMCE jointly from scratch and never reads "
            f"jmce.checkpoint ({spec.checkpoint!r}); remove it, or use training='two_stage'"
        )


class CWGenerator(Forecaster):
    """Base of CW-Diff / CW-Flow (module docstring). Subclasses implement
    ``generative_loss(batch, whitening, cond)`` and
    ``generate(history, cond, whitening, num_samples)``, with ``cond =
    net.condition(history, future_time_feat)`` (``network.py``).

    Args:
        prior: ``jmce`` (conditionally whitened) or ``standard`` (Raw baseline).
        training: ``two_stage`` (frozen JMCE from ``jmce.checkpoint``) or ``e2e`` (joint).
        whitening: ``symmetric`` (eigh) or ``cholesky`` (triangular solve; required by ``e2e``).
        jmce: the JMCE prior (``JMCESpec``: checkpoint, sizes, loss settings; its
            ``lambda_min`` is also the eigenvalue clamp of symmetric whitening). ``None``:
            ``JMCESpec()`` for ``prior="jmce"``; must be ``None`` for ``prior="standard"``.
        d_model, n_heads, num_layers, d_ff, dropout: sizes of the default network
            (``ConditionalDenoiser``); not used when ``network`` is given.
        network: the generator network as ``{class_path, init_args}`` (``network.py``; built
            with the data facts); ``None``: ``ConditionalDenoiser``.
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        prior: Prior = "jmce",
        training: Training = "two_stage",
        whitening: WhiteningKind = "symmetric",
        jmce: JMCESpec | None = None,
        d_model: int = 64,
        n_heads: int = 4,
        num_layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.0,
        network: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        _choice("prior", prior, PRIORS)
        _choice("training", training, TRAININGS)
        _choice("whitening", whitening, WHITENINGS)
        self.prior, self.training_mode, self.whitening = prior, training, whitening
        self.jmce: JMCE | None = None
        self.jmce_spec: JMCESpec | None = None
        if prior == "standard" and jmce is not None:
            raise ValueError(
                "prior='standard' (the Raw baseline) has no JMCE, so `jmce` would be ignored; "
                f"remove it or set prior='jmce' (got {jmce})"
            )
        if prior == "jmce":
            spec = JMCESpec() if jmce is None else jmce
            if not isinstance(spec, JMCESpec):
                raise TypeError(f"jmce must be a JMCESpec; got {type(spec).__name__}")
            _check_jmce_training(spec, training, whitening)
            self.jmce_spec, self.lambda_min = spec, spec.lambda_min
            self.jmce = spec.build(
                target_dim, context_length, prediction_length, freq, num_time_features
            )
            mark_jmce_parameters(self.jmce)  # CWAdamW's JMCE group (optim.py)
            if training == "two_stage":
                self._load_frozen_jmce(str(spec.checkpoint))
        data = dict(
            target_dim=target_dim,
            context_length=context_length,
            prediction_length=prediction_length,
            num_time_features=num_time_features,
        )
        if network is None:
            self.net: GeneratorNetwork = ConditionalDenoiser(
                **data, d_model=d_model, n_heads=n_heads, num_layers=num_layers, d_ff=d_ff,
                dropout=dropout,
            )  # fmt: skip
        else:
            self.net = build_network(network, **data)

    def _load_frozen_jmce(self, checkpoint: str) -> None:
        assert self.jmce is not None
        self.jmce_checkpoint = checkpoint
        if Path(checkpoint).expanduser().is_file():
            load_jmce_state(self.jmce, checkpoint)
            log.info("CW prior: frozen JMCE loaded from %s", checkpoint)
        else:  # its weights may come from a CW checkpoint loaded next
            log.warning(
                "jmce.checkpoint %s does not exist: the frozen JMCE's weights must come "
                "from a CW-Diff / CW-Flow checkpoint (else the first loss or sample call fails)",
                checkpoint,
            )
        self.jmce.requires_grad_(False)
        self.jmce.eval()

    @classmethod
    def upgrade_init_args(cls, init_args: dict[str, Any]) -> dict[str, Any]:
        """Specs of 0.1 checkpoints: flat ``jmce_*`` arguments become ``jmce: JMCESpec``."""
        return upgrade_legacy_jmce_arguments(init_args)

    @property
    def frozen_prior(self) -> bool:
        return self.jmce is not None and self.training_mode == "two_stage"

    def train(self, mode: bool = True):
        super().train(mode)
        if self.jmce is not None and self.frozen_prior:
            self.jmce.eval()  # a frozen JMCE never uses dropout
        return self

    def diagnostic_figures(self, batch: ForecastBatch) -> dict[str, object]:
        """The JMCE prior's ``Sigma-hat`` view (``JMCE.diagnostic_figures``); none for
        ``prior: standard``."""
        return {} if self.jmce is None else self.jmce.diagnostic_figures(batch)

    # ------------------------------------------------------------------ prior
    def prior_whitening(
        self, batch: ForecastBatch, with_loss: bool = True
    ) -> tuple[Whitening, Tensor | None]:
        """The whitening of this batch's prior and, for ``e2e`` (and ``with_loss``), the JMCE
        loss to add.

        Computed from ``batch.past_target`` of the same windows (row ``b`` of the prior belongs
        to row ``b`` of the batch)."""
        if self.jmce is None:
            return IdentityWhitening(torch.zeros_like(batch.future_target)), None
        if self.frozen_prior:
            if not self.jmce.weights_loaded:
                raise ValueError(_missing_jmce_message(self.jmce_checkpoint))
            with torch.no_grad():
                mu, lower, covariance = self.jmce.estimate(batch)
            if self.whitening == "symmetric":
                return SymmetricWhitening(mu, covariance, eps=self.lambda_min), None
            # the same floored covariance as the symmetric path (one rotation apart)
            return CholeskyWhitening(mu, floored_cholesky(covariance, self.lambda_min)), None
        estimate = self.jmce.estimate(batch)
        whitening = CholeskyWhitening(estimate[0], estimate[1])
        if not with_loss:
            return whitening, None
        return whitening, self.jmce.loss_parts(batch, estimate).total

    # ------------------------------------------------------------------ Forecaster
    def loss(self, batch: ForecastBatch) -> Tensor:
        self.check_batch(batch)
        whitening, jmce_loss = self.prior_whitening(batch)
        cond = self.net.condition(batch.past_target, batch.future_time_feat)
        gen = self.generative_loss(batch, whitening, cond)
        return gen if jmce_loss is None else 0.5 * (jmce_loss + gen)

    @torch.no_grad()
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        self.check_batch(batch)
        noise = SampleNoise.resolve(noise, batch.batch_size)
        whitening, _ = self.prior_whitening(batch, with_loss=False)
        cond = self.net.condition(batch.past_target, batch.future_time_feat)
        return self.generate(batch.past_target, cond, whitening, num_samples, noise)

    def generative_loss(
        self, batch: ForecastBatch, whitening: Whitening, cond: Tensor | None
    ) -> Tensor:
        """The generator's loss on ``batch`` given the prior's ``whitening`` (scalar)."""
        raise NotImplementedError

    def generate(
        self,
        history: Tensor,
        cond: Tensor | None,
        whitening: Whitening,
        num_samples: int,
        noise: SampleNoise,
    ) -> Tensor:
        """``[B, S, Q, N]`` samples for the windows of ``history [B, P, N]``, all randomness
        drawn from ``noise``."""
        raise NotImplementedError
