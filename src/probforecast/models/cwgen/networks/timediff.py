r"""TimeDiff's denoiser (Shen & Kwok 2023) as CW-TimeDiff uses it (official ``cw_timediff.py``,
``CNN_DiffusionUnet``): the network of CW-TimeDiff / Raw-TimeDiff (``CWDiff`` with
``network: {class_path: probforecast.models.cwgen.networks.TimeDiffNet}``).

Axes: ``R`` rows, ``P`` history, ``Q`` horizon, ``N`` series, ``C`` channels.

Building block ``ConvStack(c_in, c_out, L)``: ``L - 1`` times [Conv1d(k=3, pad 1), BatchNorm,
LeakyReLU(0.1), Dropout], then a last Conv1d(k=3); convolutions over time, Kaiming-normal
(``fan_out``, leaky-ReLU gain) weights and zero biases (``L = 1``: the single convolution).

.. math::
    e(t) &= W_e\,[\sin(t\,\omega_k), \cos(t\,\omega_k)]_{k<D/2},
        \quad \omega_k = 10^{4k/(D/2)} &&[R, D]\\
    h &= \mathrm{enc}\big([\mathrm{inp}(x^\top); e(t) 1_Q^\top]\big) &&[R, C, Q]\\
    c &= \mathrm{hist}\big(\mathrm{Upsample}_Q(\mathrm{Conv1d}_{k=3,\,s}(\mathrm{history}^\top))\big)
        &&[R, C, Q]\\
    \hat y &= \big(\mathrm{out}(\mathrm{dec}(h + c))\big)^\top &&[R, Q, N]

with ``inp = ConvStack(N, inp_embed, layers_inp)``, ``enc = ConvStack(inp_embed + D, C,
layers_I)``, ``hist = ConvStack(N, C, layers_I)``, ``dec = ConvStack(C, C, layers_II)``, ``out =
ConvStack(C, N, 1)``, the history convolution's stride ``s = 2`` if ``P > Q`` else 1 and a linear
``Upsample`` (``align_corners``) to length ``Q``. The step features are those of the official
embedding table (``steps * 10 ** (dims * 4 / dim)``; computed for the given ``t`` here, equal to
the table at integer steps), followed by one linear layer. ``c`` depends on the history alone,
so ``condition`` computes it once per window.

Official switches (``ablation_study_F_type`` / ``ablation_study_case``):

* ``prior_branch="none"`` (official ``"basic"``, what CW-TimeDiff runs): the output is
  ``y_hat``.
* ``prior_branch="linear"`` (official ``"Linear"``: TimeDiff's linear autoregressive
  initialisation): a per-series linear map of the history ``F_n = W_n h_n + b_n`` (``W_n
  [Q, P]`` initialised to ``1/P``, the history mean, ``b_n = 0``) is concatenated with
  ``y_hat`` (and, when ``history_mean`` (official case ``"base"``), with the history mean
  repeated over the horizon) and fused by ``ConvStack(2N (+N), N, layers_II)``.
* The official ``"CNN"`` branch maps ``Linear(P, N)`` over the series axis and runs only when
  ``N == P``; it is not provided.
* Future mixup: the official network takes TimeDiff's ``use_clean`` / ``clean_x`` arguments but
  ignores them, so CW-TimeDiff trains without future mixup; so does this network.

The official sizes: ``inp_embed = D = C = channels_conv = 256``, five layers in every stack,
dropout 0.1; the diffusion schedule is ``CWDiff``'s (official: T = 100, linear beta 1e-4..0.02,
x0-prediction, DDIM 50 steps).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn
from torch.nn import functional

from probforecast.models.cwgen.network import GeneratorNetwork

PriorBranch = Literal["none", "linear"]
PRIOR_BRANCHES: tuple[str, ...] = get_args(PriorBranch)


def _conv(c_in: int, c_out: int) -> nn.Conv1d:
    conv = nn.Conv1d(c_in, c_out, kernel_size=3, padding=1)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="leaky_relu")
    assert conv.bias is not None  # built with bias=True
    nn.init.zeros_(conv.bias)
    return conv


class ConvStack(nn.Sequential):
    """``[R, c_in, T] -> [R, c_out, T]``: TimeDiff's ``InputConvNetwork`` (module docstring)."""

    def __init__(self, c_in: int, c_out: int, layers: int, channels: int, dropout: float):
        if layers < 1:
            raise ValueError(f"a TimeDiff conv stack needs >= 1 layer; got {layers}")
        blocks: list[nn.Module] = []
        width = c_in
        for _ in range(layers - 1):
            blocks += [_conv(width, channels), nn.BatchNorm1d(channels), nn.LeakyReLU(0.1)]
            blocks.append(nn.Dropout(dropout))
            width = channels
        blocks.append(_conv(width, c_out))
        super().__init__(*blocks)


def timediff_step_features(t: Tensor, dim: int) -> Tensor:
    """``t [R] -> [R, dim]``: ``[sin(t w_k), cos(t w_k)]``, ``w_k = 10^(4k/(dim/2))`` (float64
    arguments, as exact as the official float32 table at integer ``t``)."""
    half = dim // 2
    freqs = 10.0 ** (torch.arange(half, device=t.device, dtype=torch.float64) * 4.0 / half)
    args = t.double().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).to(torch.float32)


class TimeDiffNet(GeneratorNetwork):
    """TimeDiff's convolutional denoiser (module docstring).

    Args:
        target_dim, context_length, prediction_length, num_time_features: data facts
            (time features are not used, as in the official network).
        inp_embed: channels of the input projection (official ``ddpm_inp_embed``, 256).
        step_dim: width of the step embedding (``ddpm_dim_diff_steps``, 256; even).
        channels: hidden channels of every stack (``ddpm_channels_conv`` and
            ``ddpm_channels_fusion_I``, 256).
        layers_inp, layers_I, layers_II: depths of the input, encoder/history and decoder
            stacks (5 each).
        dropout: dropout in the stacks (0.1).
        prior_branch: ``none`` (official ``basic``) or ``linear`` (TimeDiff's linear
            autoregressive initialisation). history_mean: with ``linear``, also fuse the
            history mean (official case ``base``).
    """

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        num_time_features: int = 0,
        inp_embed: int = 256,
        step_dim: int = 256,
        channels: int = 256,
        layers_inp: int = 5,
        layers_I: int = 5,  # noqa: N803 - the official name
        layers_II: int = 5,  # noqa: N803
        dropout: float = 0.1,
        prior_branch: PriorBranch = "none",
        history_mean: bool = True,
    ) -> None:
        super().__init__()
        if prior_branch not in PRIOR_BRANCHES:
            raise ValueError(f"prior_branch must be one of {PRIOR_BRANCHES}; got {prior_branch!r}")
        if step_dim % 2:
            raise ValueError(f"step_dim must be even; got {step_dim}")
        n, p, q = target_dim, context_length, prediction_length
        self.prediction_length, self.step_dim = q, step_dim
        self.prior_branch, self.history_mean = prior_branch, history_mean
        self.input_projection = ConvStack(n, inp_embed, layers_inp, channels, dropout)
        self.step_projection = nn.Linear(step_dim, step_dim)
        self.enc_conv = ConvStack(inp_embed + step_dim, channels, layers_I, channels, dropout)
        self.history_conv = nn.Conv1d(n, n, kernel_size=3, padding=1, stride=2 if p > q else 1)
        self.history_encoder = ConvStack(n, channels, layers_I, channels, dropout)
        self.dec_conv = ConvStack(channels, channels, layers_II, channels, dropout)
        self.output_projection = ConvStack(channels, n, 1, channels, dropout)
        if prior_branch == "linear":
            self.prior_weight = nn.Parameter(torch.full((n, q, p), 1.0 / p))
            self.prior_bias = nn.Parameter(torch.zeros(n, q))
            fused = (3 if history_mean else 2) * n
            self.combine_conv = ConvStack(fused, n, layers_II, channels, dropout)

    def condition(self, history: Tensor, future_time_feat: Tensor | None = None) -> Tensor:
        """``history [B, P, N] -> c [B, C, Q]`` (the history branch; module docstring)."""
        h = self.history_conv(history.transpose(1, 2))
        h = functional.interpolate(
            h, size=self.prediction_length, mode="linear", align_corners=True
        )
        return self.history_encoder(h)

    def forward(self, x: Tensor, t: Tensor, history: Tensor, cond: Tensor | None) -> Tensor:
        """``x [R, Q, N]``, ``t [R]`` (diffusion steps), ``history [R, P, N]``, ``cond [R, C, Q]``
        (or ``None``: computed from ``history``) -> ``[R, Q, N]``."""
        q = x.shape[1]
        if cond is None:
            cond = self.condition(history)
        step = self.step_projection(timediff_step_features(t, self.step_dim).to(x.dtype))
        h = self.input_projection(x.transpose(1, 2))
        h = self.enc_conv(torch.cat([h, step.unsqueeze(-1).expand(-1, -1, q)], dim=1))
        out = self.output_projection(self.dec_conv(h + cond)).transpose(1, 2)  # [R, Q, N]
        if self.prior_branch == "none":
            return out
        prior = torch.einsum("nqp,rpn->rqn", self.prior_weight, history) + self.prior_bias.T
        parts = [out, prior]
        if self.history_mean:
            parts.append(history.mean(1, keepdim=True).expand(-1, q, -1))
        return self.combine_conv(torch.cat(parts, dim=-1).transpose(1, 2)).transpose(1, 2)


__all__ = ["ConvStack", "TimeDiffNet", "timediff_step_features"]
