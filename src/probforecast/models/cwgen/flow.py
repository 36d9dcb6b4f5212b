r"""CW-Flow: conditional flow matching from the JMCE source ``N(mu_hat, Sigma_hat)`` (spec-cwgen §6).

Axes: ``B`` windows, ``S`` samples, ``Q`` horizon, ``N`` series.

The data is **not** whitened; only the source changes. With ``Z = mu_hat + A eps``
(``prior="standard"``: ``Z = eps``), ``tau ~ U(0, 1)`` and the linear path
``X_tau = tau X + (1 - tau) Z`` (``tau = 1`` is data), the network regresses the velocity:

.. math::
    \mathcal L = \overline{(v_\theta(X_\tau, \tau, C) - (X - Z))^2}
    + w_{fft}\Big[\overline{(\Re\mathcal F v_\theta - \Re\mathcal F(X-Z))^2}
    + \overline{(\Im\mathcal F v_\theta - \Im\mathcal F(X-Z))^2}\Big]

(``F`` = FFT over the horizon, ``norm="forward"``, as FlowTS; ``fft_weight=0`` disables it).
Sampling integrates ``dX/dtau = v_theta`` from a fresh ``Z`` over ``sampling_steps`` uniform
steps with Euler or Heun (2nd order; one more network call per step). The network sees
``time_scale * tau`` as its step value (1000 by default).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor

from probforecast.data.batch import ForecastBatch
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

TIME_SCALE = 1000.0


def velocity_loss(v: Tensor, target: Tensor, observed: Tensor, fft_weight: float) -> Tensor:
    r"""Flow matching's regression loss: masked mean squared error of the velocity plus the
    FFT term of FlowTS.

    ``sum(mask * (v - target)^2) / max(sum(mask), 1) + fft_weight * (mean |Re(F v - F target)|^2
    + mean |Im(F v - F target)|^2)``, with ``F`` the FFT over time (``norm="forward"``, axis 1).

    Args:
        v, target: ``[R, T, N]`` predicted and target velocities; observed: ``[R, T, N]`` bool.
        fft_weight: weight of the FFT term (0: no FFT).
    """
    mask = observed.to(v.dtype)
    loss = ((v - target).square() * mask).sum() / mask.sum().clamp_min(1.0)
    if fft_weight > 0:
        fv = torch.fft.fft(v, dim=1, norm="forward")
        ft = torch.fft.fft(target, dim=1, norm="forward")
        fft = (fv.real - ft.real).square().mean() + (fv.imag - ft.imag).square().mean()
        loss = loss + fft_weight * fft
    return loss


class CWFlow(CWGenerator):
    """Conditionally whitened flow matching (module docstring); prior/training arguments in
    ``CWGenerator``.

    Args:
        sampling_steps: ODE steps. solver: ``euler`` or ``heun``.
        fft_weight: weight of the FFT velocity loss (FlowTS uses sqrt(Q)/5; 0 disables).
        network: the velocity network (``CWGenerator``; contract in ``network.py``).
        time_scale: the network's time input is ``time_scale * tau`` (1000: the step scale of
            ``ConditionalDenoiser``'s embedding).
    """

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
        sampling_steps: int = 10,
        solver: Literal["euler", "heun"] = "euler",
        fft_weight: float = 0.0,
        network: dict[str, Any] | None = None,
        time_scale: float = TIME_SCALE,
    ) -> None:
        super().__init__(
            target_dim, context_length, prediction_length, freq, num_time_features, prior,
            training, whitening, jmce, d_model, n_heads, num_layers, d_ff, dropout, network,
        )  # fmt: skip
        _choice("solver", solver, ("euler", "heun"))
        if sampling_steps < 1 or fft_weight < 0:
            raise ValueError(
                f"need sampling_steps >= 1 and fft_weight >= 0; got {sampling_steps}, {fft_weight}"
            )
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0; got {time_scale}")
        self.sampling_steps, self.solver, self.fft_weight = sampling_steps, solver, fft_weight
        self.time_scale = time_scale

    def _velocity(
        self, x: Tensor, tau: float | Tensor, history: Tensor, cond: Tensor | None
    ) -> Tensor:
        t = torch.as_tensor(tau, dtype=x.dtype, device=x.device).expand(x.shape[0])
        return self.net(x, self.time_scale * t, history, cond)

    def generative_loss(
        self, batch: ForecastBatch, whitening: Whitening, cond: Tensor | None
    ) -> Tensor:
        x1 = batch.future_target  # [B, Q, N]
        z = whitening.sample(1)[:, 0]  # [B, Q, N], differentiable in mu/A for e2e
        tau = torch.rand(x1.shape[0], 1, 1, device=x1.device, dtype=x1.dtype)
        x_tau = tau * x1 + (1 - tau) * z
        v = self.net(x_tau, self.time_scale * tau.flatten(), batch.past_target, cond)
        target = x1 - z
        return velocity_loss(v, target, batch.future_observed, self.fft_weight)

    def generate(
        self,
        history: Tensor,
        cond: Tensor | None,
        whitening: Whitening,
        num_samples: int,
        noise: SampleNoise,
    ) -> Tensor:
        x = rearrange(whitening.sample(num_samples, noise), "b s q n -> (b s) q n")
        cond = repeat_rows(cond, num_samples)
        history = repeat_rows(history, num_samples)
        dt = 1.0 / self.sampling_steps
        for i in range(self.sampling_steps):
            tau = i * dt
            v = self._velocity(x, tau, history, cond)
            if self.solver == "heun":
                x_euler = x + dt * v
                v = 0.5 * (v + self._velocity(x_euler, tau + dt, history, cond))
            x = x + dt * v
        return rearrange(x, "(b s) q n -> b s q n", s=num_samples)
