"""Decoder-only (GPT-style) Transformer forecaster with the low-rank / GLS head."""

from __future__ import annotations

from typing import Any

import torch
from einops import repeat
from torch import Tensor, nn

from probforecast.models.gls.cached_encoder import LayerCaches, encode_with_caches, step_with_caches
from probforecast.models.gls.lowrank_ar import LowRankARForecaster


def sliding_causal_mask(length: int, window: int, device=None) -> Tensor:
    """``[T, T]`` bool mask, True = blocked: position ``t`` attends to ``t-window+1 .. t``."""
    i = torch.arange(length, device=device)
    offset = i[:, None] - i[None, :]
    return (offset < 0) | (offset >= window)


class TransformerForecaster(LowRankARForecaster[LayerCaches]):
    """Decoder-only causal Transformer as in the GLS paper (spec-gls §1.3): inputs embedded by
    ``Linear(F_in, H)``, ``num_layers`` post-norm ``TransformerEncoderLayer``s (``nhead`` heads,
    feed-forward ``2H``, ReLU) under a causal mask, no positional encoding (the official code;
    the time features carry position), then the shared low-rank head.

    ``attention_window`` (default: the unrolled context ``P = context_length - max(lags)``)
    limits attention to the last ``P`` positions, so every one-step prediction, in training
    and in the rolling sampler, has its own P-step context as in the paper — computed for all
    positions of a window in one pass. The sampler decodes one position at a time with every
    layer's keys and values cached (exactly the teacher-forced computation, ``O(L (P H + H^2))``
    per step).

    Args:
        num_layers: Transformer layers (paper: 2).
        num_heads: attention heads (paper: 2).
        dropout: dropout rate (paper: 0.01).
        attention_window: see above; ``0`` means unlimited causal attention.
        *args: the other arguments of ``LowRankARForecaster`` (``hidden_size`` is ``d_model``).
        **kwargs: the other arguments of ``LowRankARForecaster``.
    """

    def __init__(
        self,
        *args: Any,
        num_layers: int = 2,
        num_heads: int = 2,
        dropout: float = 0.01,
        attention_window: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.hidden_size % num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_heads={num_heads}"
            )
        self.window = self.unrolled_context if attention_window is None else attention_window
        self.embed = nn.Linear(self.input_size, self.hidden_size)
        layer = nn.TransformerEncoderLayer(
            self.hidden_size,
            num_heads,
            dim_feedforward=2 * self.hidden_size,
            dropout=dropout,
            batch_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.num_layers = num_layers

    def encode(self, inputs: Tensor) -> tuple[Tensor, LayerCaches]:
        """Teacher-forced pass under the sliding causal mask; the state is every layer's keys and
        values at the last ``W - 1`` positions, what the next position attends to."""
        length = inputs.shape[1]
        window = self.window if self.window > 0 else length
        mask = sliding_causal_mask(length, window, inputs.device)
        return encode_with_caches(self.layers, self.embed(inputs), mask, self.window)

    def step(self, inputs: Tensor, state: LayerCaches) -> tuple[Tensor, LayerCaches]:
        """The training computation at the new position, one query per layer over the cached
        keys and values (``probforecast.models.gls.cached_encoder``): exact, ``O(L (W H + H^2))``
        per step."""
        out, caches = step_with_caches(self.layers, self.embed(inputs), state, self.window)
        return out[:, -1], caches

    def repeat_state(self, state: LayerCaches, times: int) -> LayerCaches:
        return [repeat(cache, "bn t h -> (s bn) t h", s=times) for cache in state]
