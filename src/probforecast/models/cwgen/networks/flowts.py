r"""FlowTS (Hu et al. 2025) as CW-FlowTS uses it (official ``cw_flowts.py`` and
``interpretable_diffusion/transformer_flowts.py``): the network ``FlowTSNet`` over the full
``[context; target]`` sequence and the generator ``CWFlowTS`` with FlowTS' training on that
sequence and its inpainting sampler.

Axes: ``B`` windows, ``S`` samples, ``R`` rows, ``P`` history, ``Q`` horizon, ``T = P + Q``,
``N`` series, ``E`` width, ``K`` decoder layers.

**Network** (a Diffusion-TS-style encoder-decoder; ``u [R, T, N]`` the sequence, ``t [R]`` the
flow time in ``[0, 1]``):

.. math::
    e &= \mathrm{Conv1d}_{k=3}(u) &&[R, T, E]\\
    z &= \mathrm{Enc}(e, t),\qquad (d, m_{1..K}, \mathrm{tr}, \mathrm{se}) = \mathrm{Dec}(e, z, t)\\
    r &= \mathrm{Conv1d}_{k=3}(d) &&[R, T, N]\\
    v &= \underbrace{W_m [m_1..m_K] + \bar r + \mathrm{tr}}_{\text{trend}}
        + \underbrace{\mathrm{Conv1d}^{circ}(\mathrm{se}) + r - \bar r}_{\text{season}}
        &&[R, T, N]

``bar r`` is ``r``'s mean over time. Encoder block: ``x += Attn(AdaLN(x, t))``, ``x +=
MLP(LN(x))``. Decoder block: self-attention and cross-attention on ``z`` (both after AdaLN),
``[x_1; x_2] = Conv1d_{T -> 2T, k=1}(x)`` over the *time* axis as channels, ``tr += Trend(x_1)``
(a cubic polynomial in ``(i+1)/(T+1)``, coefficients from two convolutions), ``se +=
Fourier(x_2)`` (the ``floor(ln F)`` largest rFFT bins of each channel, DC and Nyquist excluded,
re-synthesised unnormalised over ``0..T-1``), ``x += MLP(LN(x))``, ``m_k = W (mean_t x)``, and
the block passes on ``x - mean_t x``. ``AdaLN(x, t) = LN(x)(1 + a) + b`` with ``[a; b] =
W silu(sinusoidal(t))``; attention queries and keys are ``RMSNorm(.) + 0.1 (.)``; the
cross-attention applies rotary position embeddings (base 50000) to queries and keys, the
self-attention none (the official default). The official attention "registers" are unused and
left out. No positional encoding is added to ``e``.

**Training** (``CWFlowTS.generative_loss``): with the window's sequence ``U = [C; X]``, source
``Z = [eps_C; mu_hat + A eps_X]`` (the history part ``N(0, I)``, the target part the JMCE prior;
``prior: standard``: all ``N(0, I)``), ``tau ~ U(0, 1)`` per window,

.. math::
    U_\tau = \tau U + (1-\tau) Z,\quad
    \mathcal L = \overline{(v(U_\tau, \tau) - (U - Z))^2}
        + w_{fft}\big[\overline{(\Re\mathcal F v - \Re\mathcal F(U-Z))^2}
        + \overline{(\Im\mathcal F v - \Im\mathcal F(U-Z))^2}\big]

over the whole sequence (``F`` the FFT over time, ``norm="forward"``; official ``w_fft =
sqrt(192)/5``; the squared error is masked by the observed flags).

**Sampling** (inpainting, ``num = sampling_steps``): ``hat U`` starts at ``[eps; mu + A eps]``;
for ``i = 0 .. num - 2`` (``include_last``: up to ``num - 1``, the e2e script's loop), with a
fresh source ``Z_i`` each step and ``t_i = (i / num)^k`` (``k = time_exponent``, official 0.1;
the e2e script uses 1),

.. math::
    \hat U_{[:P]} \leftarrow C,\quad U_{t_i} = t_i \hat U + (1 - t_i) Z_i,\quad
    \hat U \leftarrow U_{t_i} + (1 - t_i)\, v(U_{t_i}, t_i)

and the target part ``hat U_{[P:]}`` is the sample. The data is not whitened (CW-Flow).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch
from einops import rearrange
from torch import Tensor, nn

from probforecast.data.batch import ForecastBatch
from probforecast.models.cwgen.flow import CWFlow, velocity_loss
from probforecast.models.cwgen.generator import Prior, Training, WhiteningKind
from probforecast.models.cwgen.jmce_spec import JMCESpec
from probforecast.models.cwgen.network import GeneratorNetwork, repeat_rows
from probforecast.models.cwgen.networks.flowts_blocks import (
    DecoderBlock,
    EncoderBlock,
)
from probforecast.models.cwgen.whitening import Whitening
from probforecast.models.noise import SampleNoise


class FlowTSNet(GeneratorNetwork):
    """FlowTS' velocity network over ``[context; target]`` (module docstring).

    ``forward_sequence(u [R, T, N], t [R]) -> [R, T, N]`` is FlowTS' own call; ``forward``
    (the network contract) runs it on ``[history; x]`` and returns the target part.

    Args:
        target_dim, context_length, prediction_length, num_time_features: data facts (the
            sequence length is ``T = P + Q``; time features are not used, as in FlowTS).
        d_model, n_heads, e_layers, d_layers, mlp_times, dropout: official 64, 4, 3, 3, 4, 0.1.
    """

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        num_time_features: int = 0,
        d_model: int = 64,
        n_heads: int = 4,
        e_layers: int = 3,
        d_layers: int = 3,
        mlp_times: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if d_layers < 1:  # the trend / season sums and the mean combination need a block
            raise ValueError(f"FlowTSNet needs d_layers >= 1; got {d_layers}")
        n, length = target_dim, context_length + prediction_length
        self.context_length, self.length = context_length, length
        self.emb = nn.Conv1d(n, d_model, kernel_size=3, padding=1)
        self.inverse = nn.Conv1d(d_model, n, kernel_size=3, padding=1)
        self.drop_emb, self.drop_inv = nn.Dropout(dropout), nn.Dropout(dropout)
        kernel = 1 if n < 32 and length < 64 else 5
        self.combine_s = nn.Conv1d(
            d_model, n, kernel, padding=kernel // 2, padding_mode="circular", bias=False
        )
        self.combine_m = nn.Conv1d(d_layers, 1, kernel_size=1, bias=False)
        self.encoder = nn.ModuleList(
            EncoderBlock(d_model, n_heads, mlp_times, dropout) for _ in range(e_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderBlock(length, n, d_model, n_heads, mlp_times, dropout) for _ in range(d_layers)
        )

    def forward_sequence(self, u: Tensor, t: Tensor) -> Tensor:
        """``u [R, T, N]`` (the interpolated ``[context; target]``), ``t [R]`` -> ``[R, T, N]``."""
        if u.shape[1] != self.length:
            raise ValueError(f"FlowTSNet was built for T = P + Q = {self.length}; got {u.shape[1]}")
        e = self.drop_emb(self.emb(u.transpose(1, 2))).transpose(1, 2)
        z = e
        for block in self.encoder:
            z = block(z, t)
        x, means = e, []
        trend: Tensor | float = 0.0
        season: Tensor | float = 0.0
        for block in self.decoder:
            x, m, tr, se = block(x, z, t)
            trend, season = trend + tr, season + se
            means.append(m)
        assert isinstance(season, Tensor)  # d_layers >= 1 (checked in __init__)
        r = self.drop_inv(self.inverse(x.transpose(1, 2))).transpose(1, 2)
        r_mean = r.mean(1, keepdim=True)
        season_part = self.combine_s(season.transpose(1, 2)).transpose(1, 2) + r - r_mean
        trend_part = self.combine_m(torch.cat(means, dim=1)) + r_mean + trend
        return trend_part + season_part

    def forward(self, x: Tensor, t: Tensor, history: Tensor, cond: Tensor | None) -> Tensor:
        """Contract: ``forward_sequence([history; x], t)[:, P:]`` (``[R, Q, N]``)."""
        return self.forward_sequence(torch.cat([history, x], dim=1), t)[:, self.context_length :]


class SequenceNetwork(Protocol):
    """A network with FlowTS' sequence call (``CWFlowTS`` checks for it at construction)."""

    def forward_sequence(self, u: Tensor, t: Tensor) -> Tensor: ...


class CWFlowTS(CWFlow):
    """CW-FlowTS / Raw-FlowTS (module docstring): ``CWFlow``'s prior, training modes and FFT loss
    on FlowTS' joint sequence, with FlowTS' inpainting sampler.

    Args (besides ``CWFlow``'s prior/JMCE arguments):
        network: a network with ``forward_sequence`` (default ``FlowTSNet`` at the official
            sizes).
        sampling_steps: ``num`` of the sampler (official 5; e2e script 10).
        time_exponent: ``k`` of ``t_i = (i/num)^k`` (official 0.1; e2e script 1).
        include_last: also run ``i = num - 1`` (the e2e script's loop).
        fft_weight: official ``sqrt(Q)/5`` (2.771 at Q = 192).
        time_scale: the network sees ``time_scale * t`` (FlowTS: 1).
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
        network: dict[str, Any] | None = None,
        sampling_steps: int = 5,
        time_exponent: float = 0.1,
        include_last: bool = False,
        fft_weight: float = 0.0,
        time_scale: float = 1.0,
    ) -> None:
        network = network or {"class_path": f"{__name__}.FlowTSNet", "init_args": {}}
        super().__init__(
            target_dim, context_length, prediction_length, freq, num_time_features,
            prior=prior, training=training, whitening=whitening, jmce=jmce,
            sampling_steps=sampling_steps, fft_weight=fft_weight, network=network,
            time_scale=time_scale,
        )  # fmt: skip
        if not callable(getattr(self.net, "forward_sequence", None)):
            raise ValueError(
                "CWFlowTS needs a sequence network with forward_sequence(u [R, P+Q, N], t) "
                f"(e.g. {__name__}.FlowTSNet); got {type(self.net).__name__}"
            )
        if time_exponent <= 0:
            raise ValueError(f"time_exponent must be > 0; got {time_exponent}")
        if sampling_steps < 2 and not include_last:
            raise ValueError("sampling_steps must be >= 2 (the sampler runs i = 0..num-2)")
        self.time_exponent, self.include_last = time_exponent, include_last

    def _forward_sequence(self, u: Tensor, t: Tensor) -> Tensor:
        # __init__ checked that the network has forward_sequence
        return cast(SequenceNetwork, self.net).forward_sequence(u, t)

    def time_grid(self) -> list[float]:
        """The sampler's ``t_i = (i / num)^k`` (module docstring)."""
        calls = self.sampling_steps if self.include_last else self.sampling_steps - 1
        return [(i / self.sampling_steps) ** self.time_exponent for i in range(calls)]

    def _source(
        self,
        history: Tensor,
        whitening: Whitening,
        num_samples: int,
        noise: SampleNoise | None = None,
    ) -> Tensor:
        """``[B*S, T, N]``: ``N(0, I)`` on the history part, the prior on the target part."""
        b, p, n = history.shape
        noise = SampleNoise.resolve(noise, b)
        future = rearrange(whitening.sample(num_samples, noise), "b s q n -> (b s) q n")
        shape = (b, num_samples, p, n)
        eps = noise.randn(shape, device=future.device, dtype=future.dtype).flatten(0, 1)
        return torch.cat([eps, future], dim=1)

    def generative_loss(
        self, batch: ForecastBatch, whitening: Whitening, cond: Tensor | None
    ) -> Tensor:
        u = torch.cat([batch.past_target, batch.future_target], dim=1)  # [B, T, N]
        z = self._source(batch.past_target, whitening, 1)  # differentiable in mu/A for e2e
        tau = torch.rand(u.shape[0], 1, 1, device=u.device, dtype=u.dtype)
        u_tau = tau * u + (1 - tau) * z
        v = self._forward_sequence(u_tau, self.time_scale * tau.flatten())
        target = u - z
        observed = torch.cat([batch.past_observed, batch.future_observed], dim=1)
        return velocity_loss(v, target, observed, self.fft_weight)

    def generate(
        self,
        history: Tensor,
        cond: Tensor | None,
        whitening: Whitening,
        num_samples: int,
        noise: SampleNoise,
    ) -> Tensor:
        context = repeat_rows(history, num_samples)  # [B*S, P, N]
        p = context.shape[1]
        u_hat = self._source(history, whitening, num_samples, noise)  # FlowTS' initial latents
        for t_i in self.time_grid():
            z = self._source(history, whitening, num_samples, noise)  # a fresh source every step
            u_hat = torch.cat([context, u_hat[:, p:]], dim=1)  # inpaint the history
            u_t = t_i * u_hat + (1 - t_i) * z
            t = torch.full((u_t.shape[0],), self.time_scale * t_i, device=u_t.device)
            u_hat = u_t + (1 - t_i) * self._forward_sequence(u_t, t.to(u_t.dtype))
        return rearrange(u_hat[:, p:], "(b s) q n -> b s q n", s=num_samples)


__all__ = ["CWFlowTS", "FlowTSNet"]
