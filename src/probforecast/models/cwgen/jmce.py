r"""JMCE, the joint mean-covariance estimator of CW-Gen (spec-cwgen §4), as a ``Forecaster``.

Axes: ``B`` windows, ``P`` history, ``Q`` horizon, ``N`` series, ``K = N(N+1)/2``.

The network maps the standardised history ``C [B, P, N]`` and the upper triangle of its sliding
covariance ``[B, P, K]`` (``N + K`` channels, all stationarised by the history statistics) to
``Q`` steps of ``N + K`` channels in one pass. The first ``N`` are de-normalised into
:math:`\hat\mu [B, Q, N]`; the last ``K`` fill an upper-triangular ``U_t`` with a softplus
diagonal, :math:`\hat\Sigma_t = U_t^\top U_t = \hat L_t \hat L_t^\top` (``L = U^T``).

Loss (spec §4.4, the official ``joint_loss_fn``) against ``Sigma^sw``, the sliding covariance of
the future segment:

.. math::
    \mathcal L = \overline{(\hat\mu - X)^2}
    + \overline{\sigma(\hat\Sigma_t - \Sigma^{sw}_t)}
    + \lambda_{min}\sqrt{QN}\ \overline{(\hat\Sigma - \Sigma^{sw})^2}
    + w_{eig}\ \overline{\mathrm{relu}(\lambda_{min} - \mathrm{eig}(\hat\Sigma_t))}

(bars are means over all entries; ``sigma`` are singular values, so the second term is the
nuclear norm divided by ``N``, averaged over ``B, Q``). ``high_dim=True`` (spec §4.6 option 1)
removes the eigendecomposition: :math:`\hat\Sigma_t = U_t^\top U_t + \lambda_{min} I` has all
eigenvalues ``>= lambda_min`` by construction, the penalty is dropped, and ``L`` is its Cholesky
factor.

``sample`` draws ``mu + L eps`` from ``N(mu_t, Sigma_t)``, independent over horizon steps.

Self-describing state: ``state_dict()`` carries the constructor arguments under
``_extra_state`` (``{"jmce_config": {...}}``); loading a state whose arguments differ in one
that changes the estimate (``ESTIMATE_ARGS``: sizes, ``label_len``, ``cov_window``,
``lambda_min``, ``high_dim``) raises one ``ValueError`` naming every differing argument with
both values. ``dropout`` and ``w_eig`` act in training only and are not checked. A state
without ``_extra_state`` (checkpoints written before it existed) loads with a warning.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import Forecaster
from probforecast.models.cwgen.backbone import NonStationaryTransformer
from probforecast.models.cwgen.covariance import (
    _check_window,
    lower_factor_from_packed,
    num_packed,
    sliding_covariance,
    triu_pack,
)
from probforecast.models.cwgen.whitening import CholeskyWhitening
from probforecast.models.noise import SampleNoise

log = logging.getLogger(__name__)

#: constructor arguments that change ``estimate``: a state trained with other values is refused
ESTIMATE_ARGS = (
    "target_dim",
    "context_length",
    "prediction_length",
    "num_time_features",
    "d_model",
    "n_heads",
    "e_layers",
    "d_layers",
    "d_ff",
    "label_len",
    "cov_window",
    "lambda_min",
    "high_dim",
)


def config_mismatch(saved: dict, own: dict) -> list[str]:
    """``["cov_window: 7 in the checkpoint, 5 here", ...]`` for every ``ESTIMATE_ARGS`` entry
    present in ``saved`` whose value differs from ``own``'s."""
    return [
        f"{k}: {saved[k]!r} in the checkpoint, {own[k]!r} here"
        for k in ESTIMATE_ARGS
        if k in saved and saved[k] != own[k]
    ]


class JMCELoss(NamedTuple):
    """The JMCE loss and its parts (each a scalar tensor)."""

    total: Tensor
    mean: Tensor
    nuclear: Tensor
    frobenius: Tensor
    penalty: Tensor


def jmce_loss(
    mu: Tensor,
    covariance: Tensor,
    target: Tensor,
    target_covariance: Tensor,
    lambda_min: float = 0.1,
    w_eig: float = 50.0,
    mask: Tensor | None = None,
    eig_penalty: bool = True,
) -> JMCELoss:
    """The JMCE loss (module docstring) of ``mu, target [B, Q, N]`` and
    ``covariance, target_covariance [B, Q, N, N]``; ``mask [B, Q, N]`` restricts the mean term."""
    q, n = target.shape[-2:]
    err = (mu - target).square()
    if mask is None:
        mean_term = err.mean()
    else:
        m = mask.to(err.dtype)
        mean_term = (err * m).sum() / m.sum().clamp_min(1.0)
    diff = covariance - target_covariance
    frobenius = diff.square().mean()
    nuclear = torch.linalg.svdvals(diff).mean()
    if eig_penalty:
        eig = torch.linalg.eigvalsh(0.5 * (covariance + covariance.transpose(-1, -2)))
        penalty = F.relu(lambda_min - eig).mean()
    else:
        penalty = torch.zeros((), dtype=mu.dtype, device=mu.device)
    total = mean_term + nuclear + lambda_min * math.sqrt(q * n) * frobenius + w_eig * penalty
    return JMCELoss(total, mean_term, nuclear, frobenius, penalty)


class JMCE(Forecaster):
    """Joint mean-covariance estimator (module docstring).

    Args:
        d_model: NS-Transformer width.
        n_heads: attention heads.
        e_layers: encoder layers.
        d_layers: decoder layers.
        d_ff: feed-forward width.
        dropout: dropout rate.
        label_len: decoder warm-up steps taken from the history (default ``P // 2``).
        cov_window: sliding-covariance window ``W`` (paper: 95; needs ``W // 2 < P`` and ``< Q``).
        lambda_min: eigenvalue threshold of the penalty (paper 0.1).
        w_eig: penalty weight (paper 50).
        high_dim: no eigendecomposition (``Sigma + lambda_min I``, no penalty), spec §4.6.
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        d_model: int = 64,
        n_heads: int = 4,
        e_layers: int = 2,
        d_layers: int = 1,
        d_ff: int = 128,
        dropout: float = 0.1,
        label_len: int | None = None,
        cov_window: int = 95,
        lambda_min: float = 0.1,
        w_eig: float = 50.0,
        high_dim: bool = False,
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        _check_window(cov_window, context_length, "context_length")
        _check_window(cov_window, prediction_length, "prediction_length")
        if lambda_min <= 0 or w_eig < 0:
            raise ValueError(f"need lambda_min > 0 and w_eig >= 0; got {lambda_min}, {w_eig}")
        self.cov_window, self.lambda_min, self.w_eig = cov_window, lambda_min, w_eig
        self.high_dim = high_dim
        self.label_len = context_length // 2 if label_len is None else label_len
        sizes = dict(
            d_model=d_model, n_heads=n_heads, e_layers=e_layers, d_layers=d_layers, d_ff=d_ff
        )
        #: the constructor arguments, stored in ``state_dict()`` (module docstring)
        self.config = dict(
            target_dim=target_dim,
            context_length=context_length,
            prediction_length=prediction_length,
            num_time_features=num_time_features,
            **sizes,
            dropout=float(dropout),
            label_len=self.label_len,
            cov_window=cov_window,
            lambda_min=float(lambda_min),
            w_eig=float(w_eig),
            high_dim=bool(high_dim),
        )
        #: True once a state (a checkpoint's weights) has been loaded into this JMCE
        self.weights_loaded = False
        self.backbone = NonStationaryTransformer(
            channels=target_dim + num_packed(target_dim),
            seq_len=context_length,
            pred_len=prediction_length,
            label_len=self.label_len,
            num_time_features=num_time_features,
            dropout=dropout,
            d_model=d_model,
            n_heads=n_heads,
            e_layers=e_layers,
            d_layers=d_layers,
            d_ff=d_ff,
        )

    # ------------------------------------------------------------------ self-describing state
    def get_extra_state(self) -> dict:
        return {"jmce_config": dict(self.config)}

    def set_extra_state(self, state: dict) -> None:
        saved = state.get("jmce_config", {}) if isinstance(state, dict) else {}
        self.check_config(saved)

    def check_config(self, saved: dict, source: str = "the checkpoint") -> None:
        """One ``ValueError`` naming every ``ESTIMATE_ARGS`` entry where ``saved`` differs."""
        wrong = config_mismatch(saved, self.config)
        if wrong:
            raise ValueError(
                f"{source} holds a JMCE trained with other sizes or settings ("
                + "; ".join(wrong)
                + "); set the JMCE arguments (for CW-Diff / CW-Flow: the fields of jmce, and "
                "the data's lengths) to the JMCE run's values"
            )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )
        extra = prefix + "_extra_state"
        if extra in missing_keys:  # a checkpoint from before the config was stored
            missing_keys.remove(extra)
            log.warning(
                "JMCE state without its stored arguments (an older checkpoint): cov_window, "
                "lambda_min and high_dim cannot be checked"
            )
        if any(k.startswith(prefix) for k in state_dict):
            self.weights_loaded = True

    def estimate(self, batch: ForecastBatch) -> tuple[Tensor, Tensor, Tensor]:
        """``(mu [B, Q, N], L [B, Q, N, N], Sigma [B, Q, N, N])`` from the batch's own history."""
        self.check_batch(batch)
        n, p = self.target_dim, self.context_length
        history = batch.past_target
        hist_cov = triu_pack(sliding_covariance(history, self.cov_window))  # [B, P, K]
        x_enc = torch.cat([history, hist_cov], dim=-1)
        marks_dec = torch.cat(
            [batch.past_time_feat[:, p - self.label_len :], batch.future_time_feat], dim=1
        )
        out, mean, std = self.backbone(x_enc, batch.past_time_feat, marks_dec)
        mu = out[..., :n] * std[..., :n] + mean[..., :n]  # only the mean channels de-normalised
        lower = lower_factor_from_packed(out[..., n:], n)
        covariance = lower @ lower.transpose(-1, -2)
        if self.high_dim:
            eye = torch.eye(n, dtype=covariance.dtype, device=covariance.device)
            covariance = covariance + self.lambda_min * eye
            lower = torch.linalg.cholesky(covariance)
        return mu, lower, covariance

    def loss_parts(
        self, batch: ForecastBatch, estimate: tuple[Tensor, Tensor, Tensor] | None = None
    ) -> JMCELoss:
        """The loss parts; ``estimate`` reuses an ``estimate(batch)`` already computed."""
        mu, _, covariance = self.estimate(batch) if estimate is None else estimate
        target_cov = sliding_covariance(batch.future_target, self.cov_window)
        return jmce_loss(
            mu,
            covariance,
            batch.future_target,
            target_cov,
            self.lambda_min,
            self.w_eig,
            mask=batch.future_observed,
            eig_penalty=not self.high_dim,
        )

    def loss(self, batch: ForecastBatch) -> Tensor:
        return self.loss_parts(batch).total

    @torch.no_grad()
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        mu, lower, _ = self.estimate(batch)
        return CholeskyWhitening(mu, lower).sample(num_samples, noise)

    @torch.no_grad()
    def diagnostic_figures(self, batch: ForecastBatch) -> dict[str, object]:
        """Dashboard view (``probforecast.callbacks.ModelViews``): the estimated covariance
        ``Sigma-hat_t [N, N]`` of the first window at the first and the last horizon step."""
        from probforecast.viz.model_views import matrix_heatmaps

        _, _, covariance = self.estimate(batch)
        q = self.prediction_length
        steps = covariance[0, [0, q - 1]].float().cpu().numpy()  # [2, N, N]
        titles = ["Sigma-hat, horizon step 1", f"Sigma-hat, horizon step {q}"]
        return {"jmce_sigma": matrix_heatmaps(steps, titles, "JMCE covariance", symmetric=True)}
