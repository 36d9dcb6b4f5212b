"""VolDy-VAE: patch VAE with a location head and a recurrent volatility (scale) head.

Wang et al., "Beyond Static Uncertainty: Modeling Temporal Uncertainty Dynamics for
Probabilistic Time Series Forecasting" (arXiv:2603.24254). Axes: ``B`` windows, ``L`` context,
``H`` horizon, ``C`` channels (series), ``P`` patch length, ``K = ceil(L/P)`` past patches,
``M = ceil(H/P)`` future patches, ``D`` latent size, ``S`` samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, overload

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from probforecast.data.batch import ForecastBatch
from probforecast.models.base import Forecaster, masked_mean
from probforecast.models.noise import SampleNoise
from probforecast.models.voldy.layers import MLP, SCALE_HEADS, build_scale_head
from probforecast.models.voldy.likelihoods import (
    LIKELIHOODS,
    elementwise_nll,
    predictive_std,
    sample_noise,
)
from probforecast.models.voldy.revin import RevIN
from probforecast.nn.patching import PADDING_MODES, num_patches, patchify, unpatchify

OBJECTIVES: tuple[str, ...] = ("full", "no_rec", "no_pred", "mse")


@dataclass
class Decoded:
    """Decoder outputs for ``S`` latent draws per window (``S = 1`` in training).

    ``past_loc, past_scale [B, S, L, C]`` (None when not decoded), ``loc, scale [B, S, H, C]``.
    ``scale`` is None for ``objective='mse'``.
    """

    past_loc: Tensor | None
    past_scale: Tensor | None
    loc: Tensor
    scale: Tensor | None


class VolDyVAE(Forecaster):
    r"""Non-autoregressive patch VAE with a location-scale decoder (paper §III).

    1. RevIN on the look-back ``x [B, L, C]`` (statistics over the observed steps).
    2. ``K`` non-overlapping patches of ``P`` steps x ``C`` channels, ``[B, K, P*C]``.
    3. MLP encoder per patch -> ``q(z_k | x) = N(mu_k, diag exp(logvar_k))``, prior ``N(0, I)``.
    4. ``Z_future = Proj(Flatten(Z_past))`` ``[B, M, D]`` (one MLP, Eq. 4; no recursion).
    5. One shared decoder for past and future latents: location ``mu = RevIN^{-1}(MLP(z))``
       (Eq. 5) and scale ``sigma`` from the scale head (Eqs. 6-7): a one-layer GRU over the patch
       latents whose final state after the look-back initialises the run over the future.

    Loss (Eq. 8), per-element means over the observed entries:

    .. math::
        \mathcal L = \mathrm{NLL}(x; \mu_x, \sigma_x) + \mathrm{NLL}(y; \mu_y, \sigma_y)
        + \beta\, \overline{\textstyle\sum_d \mathrm{KL}(q(z_{k,d}|x)\,\|\,N(0,1))}

    (KL summed over ``D``, averaged over patches and windows). Sampling draws a fresh latent per
    sample from the posterior, decodes all ``S`` draws in one batched pass and adds the
    likelihood's noise.

    Args:
        patch_len: ``P`` (24 in the paper; a context not divisible by it is padded).
        latent_dim: ``D`` (128 in the official code; the paper's Table XVI says 256).
        mlp_hidden: width of the encoder / location MLPs (256).
        encoder_layers: ``hidden_layers`` of the Koopa-style encoder MLP (3 = three linear
            layers).
        decoder_layers: the same for the location head (``0`` makes it one linear layer).
        scale_hidden: hidden size of the scale head (GRU/LSTM state; the MLP head's width);
            0 means ``latent_dim`` (paper: "equal to the latent dimension").
        dropout: dropout of the encoder / location / projection MLPs (Koopa's default 0.05).
        scale_head: ``gru`` (paper), ``lstm`` or ``mlp`` (memoryless, Table VI).
        state_transfer: start the future scale recursion from the past's final state.
        likelihood: ``gaussian`` (paper), ``laplace`` or ``student_t`` (learned ``nu > 2`` per
            channel, initialised at 5).
        objective: ``full`` (rec + pred + KL), ``no_rec``, ``no_pred`` (Table IV's w/o R, w/o P),
            or ``mse`` (the "vanilla VAE": squared errors, no scale head, samples carry only
            the latent spread).
        revin: RevIN on/off (Table V). revin_affine: learn RevIN's affine map.
        rescale_sigma: multiply the scale by the RevIN std (``sigma s / |gamma|``); the paper and
            the official code leave ``sigma`` in normalised units (False).
        beta: KL weight (0.01, the official config). min_scale: ``xi``, the scale floor.
        padding: ``edge`` (front-pad with the first step; aligned reconstruction) or ``wrap``
            (the official code: prepend the last steps; reconstruction is shifted).
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        patch_len: int = 24,
        latent_dim: int = 128,
        mlp_hidden: int = 256,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        scale_hidden: int = 0,
        dropout: float = 0.05,
        scale_head: Literal["gru", "lstm", "mlp"] = "gru",
        state_transfer: bool = True,
        likelihood: Literal["gaussian", "laplace", "student_t"] = "gaussian",
        objective: Literal["full", "no_rec", "no_pred", "mse"] = "full",
        revin: bool = True,
        revin_affine: bool = True,
        rescale_sigma: bool = False,
        beta: float = 0.01,
        min_scale: float = 1e-6,
        padding: Literal["edge", "wrap"] = "edge",
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        for name, value, allowed in (
            ("scale_head", scale_head, SCALE_HEADS),
            ("likelihood", likelihood, LIKELIHOODS),
            ("objective", objective, OBJECTIVES),
            ("padding", padding, PADDING_MODES),
        ):
            if value not in allowed:
                raise ValueError(f"VolDyVAE: {name} must be one of {allowed}; got {value!r}")
        for name, size in (
            ("patch_len", patch_len),
            ("latent_dim", latent_dim),
            ("mlp_hidden", mlp_hidden),
        ):
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"VolDyVAE: {name} must be a positive integer; got {size!r}")
        if beta < 0 or min_scale <= 0 or not 0 <= dropout < 1:
            raise ValueError(
                "VolDyVAE: expected beta >= 0, min_scale > 0 and 0 <= dropout < 1; got "
                f"beta={beta}, min_scale={min_scale}, dropout={dropout}"
            )
        if rescale_sigma and not revin:
            raise ValueError("VolDyVAE: rescale_sigma=True needs revin=True")
        c, p = target_dim, patch_len
        self.patch_len, self.latent_dim = p, latent_dim
        self.n_past = num_patches(context_length, p)
        self.n_future = num_patches(prediction_length, p)
        self.likelihood, self.objective, self.padding = likelihood, objective, padding
        self.beta, self.rescale_sigma = beta, rescale_sigma
        self.revin = RevIN(c, affine=revin_affine) if revin else None
        self.encoder = MLP(p * c, 2 * latent_dim, mlp_hidden, encoder_layers, dropout)
        flat = self.n_past * latent_dim
        self.future_proj = MLP(flat, self.n_future * latent_dim, max(flat // 2, 1), 1, dropout)
        self.location_head = MLP(latent_dim, p * c, mlp_hidden, decoder_layers, dropout)
        self.scale_head = (
            None
            if objective == "mse"
            else build_scale_head(
                scale_head, latent_dim, scale_hidden or latent_dim, p * c, min_scale, state_transfer
            )
        )
        if likelihood == "student_t":  # nu = 2 + softplus(raw), initialised at nu = 5
            self.df_raw = nn.Parameter(torch.full((c,), math.log(math.expm1(3.0))))

    # ------------------------------------------------------------------ pieces
    def df(self) -> Tensor | None:
        """Student-t degrees of freedom ``nu [C]`` (None for other likelihoods)."""
        return 2.0 + F.softplus(self.df_raw) if self.likelihood == "student_t" else None

    def encode(self, batch: ForecastBatch) -> tuple[Tensor, Tensor]:
        """Posterior parameters ``(mu_z, logvar_z)``, each ``[B, K, D]``; sets RevIN's stats."""
        x = batch.past_target
        if self.revin is not None:
            x = self.revin.normalize(x, batch.past_observed)
        patches = patchify(x, self.patch_len, self.padding)  # [B, K, P*C]
        mu, logvar = self.encoder(patches).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z_past: Tensor, num_samples: int = 1, with_past: bool = True) -> Decoded:
        """Decode latents ``z_past [(B S), K, D]`` (batch-major, ``S`` draws per window).

        Call after ``encode`` of the same batch (RevIN statistics). The past location is only
        computed when ``with_past``; the past scale pass always runs (its final state starts the
        future recursion).
        """
        s, (bs, k, d) = num_samples, z_past.shape
        z_future = self.future_proj(z_past.reshape(bs, k * d)).view(bs, self.n_future, d)
        ctx, h = self.context_length, self.prediction_length
        loc = unpatchify(self.location_head(z_future), self.patch_len, h, past=False)
        past_loc = past_scale = scale = None
        if with_past:
            past_loc = unpatchify(self.location_head(z_past), self.patch_len, ctx, self.padding)
        if self.scale_head is not None:
            sig_past, sig_future = self.scale_head(z_past, z_future)
            scale = unpatchify(sig_future, self.patch_len, h, past=False)
            past_scale = unpatchify(sig_past, self.patch_len, ctx, self.padding)
        return Decoded(
            past_loc=self._to_original(past_loc, s, is_scale=False),
            past_scale=self._to_original(past_scale, s, is_scale=True),
            loc=self._to_original(loc, s, is_scale=False),
            scale=self._to_original(scale, s, is_scale=True),
        )

    @overload
    def _to_original(self, x: Tensor, s: int, is_scale: bool) -> Tensor: ...
    @overload
    def _to_original(self, x: None, s: int, is_scale: bool) -> None: ...
    @overload
    def _to_original(self, x: Tensor | None, s: int, is_scale: bool) -> Tensor | None: ...

    def _to_original(self, x: Tensor | None, s: int, is_scale: bool) -> Tensor | None:
        """``[(B S), T, C]`` normalised -> ``[B, S, T, C]`` in the data module's scaled space."""
        if x is None:
            return None
        t = x.shape[1]
        x = rearrange(x, "(b s) t c -> b (s t) c", s=s)  # RevIN stats broadcast over (s t)
        if self.revin is not None:
            if not is_scale:
                x = self.revin.denormalize(x)
            elif self.rescale_sigma:
                x = self.revin.denormalize_scale(x)
        return rearrange(x, "b (s t) c -> b s t c", s=s, t=t)

    @staticmethod
    def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
        """``KL(N(mu, e^logvar) || N(0, 1))`` summed over ``D``, averaged over patches and windows."""
        kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)  # [B, K]
        return kl.mean()

    def _fit_term(self, value: Tensor, mask: Tensor, loc: Tensor, scale: Tensor | None) -> Tensor:
        if self.objective == "mse":
            return masked_mean((value - loc).square(), mask)
        assert scale is not None  # objectives other than mse build a scale head
        nll = elementwise_nll(self.likelihood, value, loc, scale, self.df())
        return masked_mean(nll, mask)

    # ------------------------------------------------------------------ contract
    def loss(self, batch: ForecastBatch) -> Tensor:
        self.check_batch(batch)
        mu, logvar = self.encode(batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        out = self.decode(z, with_past=self.objective != "no_rec")
        total = self.beta * self.kl_divergence(mu, logvar)
        if self.objective != "no_rec":
            assert out.past_loc is not None  # decoded with_past
            past_scale = None if out.past_scale is None else out.past_scale[:, 0]
            total = total + self._fit_term(
                batch.past_target, batch.past_observed, out.past_loc[:, 0], past_scale
            )
        if self.objective != "no_pred":
            scale = None if out.scale is None else out.scale[:, 0]
            total = total + self._fit_term(
                batch.future_target, batch.future_observed, out.loc[:, 0], scale
            )
        return total

    def forecast_parameters(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Decoded:
        """Horizon location/scale for ``num_samples`` fresh posterior draws, ``[B, S, H, C]``."""
        self.check_batch(batch)
        noise = SampleNoise.resolve(noise, batch.batch_size)
        mu, logvar = self.encode(batch)
        b, k, d = mu.shape
        eps = noise.randn((b, num_samples, k, d), dtype=mu.dtype, device=mu.device)
        mu = repeat(mu, "b k d -> (b s) k d", s=num_samples)
        std = repeat((0.5 * logvar).exp(), "b k d -> (b s) k d", s=num_samples)
        return self.decode(mu + std * eps.flatten(0, 1), num_samples, with_past=False)

    @torch.no_grad()
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        noise = SampleNoise.resolve(noise, batch.batch_size)
        out = self.forecast_parameters(batch, num_samples, noise)
        if out.scale is None:  # objective="mse": spread from the latent draws only
            return out.loc
        return sample_noise(self.likelihood, out.loc, out.scale, self.df(), noise)

    @torch.no_grad()
    def diagnostic_figures(
        self, batch: ForecastBatch, num_draws: int = 32, max_series: int = 4
    ) -> dict[str, object]:
        """Dashboard view (``probforecast.callbacks.ModelViews``): the predicted observation
        std ``sigma [H]`` of the first window over the horizon, for the first ``max_series``
        series, as the 10 %, 50 % and 90 % quantiles over ``num_draws`` latent draws. Empty for
        ``objective: mse`` (no scale head)."""
        if self.objective == "mse":
            return {}
        from probforecast.viz.model_views import horizon_lines

        scale = self.predictive_scale(batch, num_draws)[0, :, :, :max_series]  # [S, H, K]
        levels = torch.tensor([0.1, 0.5, 0.9], dtype=scale.dtype, device=scale.device)
        lines = torch.quantile(scale, levels, dim=0).float().cpu().numpy()  # [3, H, K]
        titles = [f"series {k}" for k in range(lines.shape[-1])]
        return {
            "voldy_sigma": horizon_lines(
                lines, titles, "sigma", "predicted sigma (10/50/90 % over latent draws)"
            )
        }

    def predictive_scale(self, batch: ForecastBatch, num_samples: int = 1) -> Tensor:
        """Per-step observation std ``[B, S, H, C]`` of ``num_samples`` latent draws (what
        ``rho_sigma`` is computed on); the latent spread is not included."""
        out = self.forecast_parameters(batch, num_samples)
        if out.scale is None:
            raise ValueError("objective='mse' has no scale head; predictive_scale is undefined")
        return predictive_std(self.likelihood, out.scale, self.df())
