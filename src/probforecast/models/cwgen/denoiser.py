r"""The default network of CW-Diff (denoiser) and CW-Flow (velocity field): ``network: null``.

Axes: ``B`` rows (windows, or windows x samples), ``P`` history, ``Q`` horizon, ``N`` series,
``F`` time features, ``E`` width.

Conditioning, computed once per window (``condition``): a per-series linear map of the history
over time ``P -> Q`` (DLinear-style, it carries trend and level into the horizon) and the last
history value, both stacked with the horizon's time features and projected to ``E``:
``c [B, Q, E]``. The network (``forward``) embeds ``x_t [B, Q, N]``, adds ``c``, a sinusoidal
horizon position and the step embedding of ``t``, runs ``num_layers`` pre-norm Transformer
encoder layers over the ``Q`` horizon tokens and reads out ``N`` values per step.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from probforecast.models.cwgen.backbone import sinusoidal_positions
from probforecast.models.cwgen.diffusion_embedding import DiffusionStepEmbedding
from probforecast.models.cwgen.network import GeneratorNetwork


class ConditionalDenoiser(GeneratorNetwork):
    """``(x_t [B, Q, N], t [B], history, c [B, Q, E]) -> [B, Q, N]`` (module docstring; the
    network contract of ``network.py``; ``history`` enters only through ``c``)."""

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        num_time_features: int,
        d_model: int = 64,
        n_heads: int = 4,
        num_layers: int = 2,
        d_ff: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.history_map = nn.Linear(context_length, prediction_length)
        self.cond_proj = nn.Linear(2 * target_dim + num_time_features, d_model)
        self.x_proj = nn.Linear(target_dim, d_model)
        self.step = DiffusionStepEmbedding(d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, d_ff, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, target_dim)
        self.d_model = d_model

    def condition(self, history: Tensor, future_time_feat: Tensor) -> Tensor:
        """``history [B, P, N]``, ``future_time_feat [B, Q, F]`` -> ``c [B, Q, E]``."""
        projected = rearrange(
            self.history_map(rearrange(history, "b p n -> b n p")), "b n q -> b q n"
        )
        last = history[:, -1:].expand_as(projected)
        return self.cond_proj(torch.cat([projected, last, future_time_feat], dim=-1))

    def forward(self, x: Tensor, t: Tensor, history: Tensor, cond: Tensor | None) -> Tensor:
        if cond is None:
            raise ValueError("ConditionalDenoiser needs cond = condition(history, time features)")
        q = x.shape[1]
        h = self.x_proj(x) + cond + self.step(t).unsqueeze(1)
        h = h + sinusoidal_positions(q, self.d_model, x.device, x.dtype)
        return self.out(self.norm(self.layers(h)))
