r"""CW-Diff: conditional DDPM on the conditionally whitened future, DDIM sampling (spec-cwgen §5).

Axes: ``B`` windows, ``S`` samples, ``Q`` horizon, ``N`` series.

Training (Alg. 2): ``y_0 = whiten(X) = A^{-1}(X - mu_hat)`` (identity for ``prior="standard"``),
``t ~ U{0..T-1}``, ``eps ~ N(0, I)``, ``y_t = sqrt(abar_t) y_0 + sqrt(1 - abar_t) eps`` with a
linear ``beta`` schedule and ``abar_t = prod_{s<=t}(1 - beta_s)``; the network predicts ``y_0``
(``parameterization="x0"``, the official code) or ``eps``, loss = masked MSE.

Sampling (Alg. 3): DDIM (Song et al. 2021) over ``sampling_steps`` integer steps
``t_0 = T-1 > ... > t_{K-1} = 0`` from ``y ~ N(0, I)``; at step ``t -> t'``

.. math::
    \hat\epsilon = \frac{y_t - \sqrt{\bar\alpha_t}\hat y_0}{\sqrt{1-\bar\alpha_t}},\quad
    \sigma = \eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}\big(1-\tfrac{\bar\alpha_t}
    {\bar\alpha_{t'}}\big)},\quad
    y_{t'} = \sqrt{\bar\alpha_{t'}}\hat y_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\epsilon
    + \sigma z,

and the prediction at ``t = 0`` is returned; samples are un-whitened ``X = A y + mu_hat`` with the
same factor ``A``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import masked_mean
from probforecast.models.cwgen.generator import (
    CWGenerator,
    Prior,
    Training,
    WhiteningKind,
    _choice,
)
from probforecast.models.cwgen.jmce_spec import JMCESpec
from probforecast.models.cwgen.network import repeat_rows
from probforecast.models.cwgen.whitening import Whitening
from probforecast.models.noise import SampleNoise


def linear_alpha_bars(steps: int, beta_start: float, beta_end: float) -> Tensor:
    """``abar [T]`` (float64) of the linear schedule ``beta_t = linspace(beta_start, beta_end)``."""
    if steps < 2 or not 0 < beta_start <= beta_end < 1:
        raise ValueError(
            "need diffusion_steps >= 2 and 0 < beta_start <= beta_end < 1; got "
            f"{steps}, {beta_start}, {beta_end}"
        )
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def ddim_timesteps(steps: int, sampling_steps: int) -> list[int]:
    """``sampling_steps`` distinct integers from ``steps - 1`` down to 0 (uniform spacing)."""
    if not 1 <= sampling_steps <= steps:
        raise ValueError(f"sampling_steps must be in [1, {steps}]; got {sampling_steps}")
    grid = torch.linspace(steps - 1, 0, sampling_steps).round().long().tolist()
    return sorted(set(grid), reverse=True)


class CWDiff(CWGenerator):
    """Conditionally whitened diffusion (module docstring); prior/training arguments in
    ``CWGenerator``.

    Args:
        diffusion_steps: ``T`` of the DDPM.
        beta_start: first ``beta`` of the linear schedule.
        beta_end: last ``beta`` of the linear schedule.
        parameterization: ``x0`` (predict the clean whitened future) or ``eps``.
        sampling_steps: DDIM steps. eta: DDIM stochasticity (0 = deterministic).
    """

    alpha_bars: Tensor  # buffer ``[T]`` (nn.Module types buffers as Tensor | Module)

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
        diffusion_steps: int = 100,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        parameterization: Literal["x0", "eps"] = "x0",
        sampling_steps: int = 50,
        eta: float = 0.0,
        network: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            target_dim, context_length, prediction_length, freq, num_time_features, prior,
            training, whitening, jmce, d_model, n_heads, num_layers, d_ff, dropout, network,
        )  # fmt: skip
        _choice("parameterization", parameterization, ("x0", "eps"))
        if eta < 0:
            raise ValueError(f"eta must be >= 0; got {eta}")
        self.parameterization, self.eta = parameterization, eta
        self.diffusion_steps = diffusion_steps
        self.timesteps = ddim_timesteps(diffusion_steps, sampling_steps)
        abar = linear_alpha_bars(diffusion_steps, beta_start, beta_end)
        self.register_buffer("alpha_bars", abar.float(), persistent=False)

    def _predict(
        self, y_t: Tensor, t: Tensor, history: Tensor, cond: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """``(y0_hat, eps_hat)`` of ``y_t [R, Q, N]`` at integer steps ``t [R]``."""
        out = self.net(y_t, t.to(y_t.dtype), history, cond)
        abar = self.alpha_bars[t].reshape(-1, 1, 1)
        if self.parameterization == "x0":
            return out, (y_t - abar.sqrt() * out) / (1 - abar).sqrt()
        return (y_t - (1 - abar).sqrt() * out) / abar.sqrt(), out

    def generative_loss(
        self, batch: ForecastBatch, whitening: Whitening, cond: Tensor | None
    ) -> Tensor:
        y0 = whitening.whiten(batch.future_target)  # [B, Q, N]
        b = y0.shape[0]
        t = torch.randint(0, self.diffusion_steps, (b,), device=y0.device)
        noise = torch.randn_like(y0)
        abar = self.alpha_bars[t].reshape(-1, 1, 1)
        y_t = abar.sqrt() * y0 + (1 - abar).sqrt() * noise
        out = self.net(y_t, t.to(y0.dtype), batch.past_target, cond)
        target = y0 if self.parameterization == "x0" else noise
        return masked_mean((out - target).square(), batch.future_observed)

    def generate(
        self,
        history: Tensor,
        cond: Tensor | None,
        whitening: Whitening,
        num_samples: int,
        noise: SampleNoise,
    ) -> Tensor:
        b, q = history.shape[0], self.prediction_length
        cond = repeat_rows(cond, num_samples)
        history = repeat_rows(history, num_samples)
        shape = (b, num_samples, q, self.target_dim)
        y = noise.randn(shape, device=history.device, dtype=history.dtype).flatten(0, 1)
        steps = self.timesteps
        for i, step in enumerate(steps):
            t = torch.full((y.shape[0],), step, device=y.device, dtype=torch.long)
            y0, eps = self._predict(y, t, history, cond)
            if i + 1 == len(steps):
                y = y0
                break
            a_t, a_next = self.alpha_bars[step], self.alpha_bars[steps[i + 1]]
            sigma = self.eta * ((1 - a_next) / (1 - a_t) * (1 - a_t / a_next)).sqrt()
            y = a_next.sqrt() * y0 + (1 - a_next - sigma**2).clamp_min(0).sqrt() * eps
            if self.eta > 0:
                eps_new = noise.randn(shape, device=y.device, dtype=y.dtype).flatten(0, 1)
                y = y + sigma * eps_new
        y = rearrange(y, "(b s) q n -> b s q n", s=num_samples)
        return whitening.unwhiten(y)
