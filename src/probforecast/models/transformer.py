"""Decoder-only (GPT-style) Transformer forecaster with the low-rank / GLS head."""

from __future__ import annotations

from typing import Any

import torch
from einops import repeat
from torch import Tensor, nn

from probforecast.models.lowrank_ar import LowRankARForecaster


def sliding_causal_mask(length: int, window: int, device=None) -> Tensor:
    """``[T, T]`` bool mask, True = blocked: position ``t`` attends to ``t-window+1 .. t``."""
    i = torch.arange(length, device=device)
    offset = i[:, None] - i[None, :]
    return (offset < 0) | (offset >= window)


class TransformerForecaster(LowRankARForecaster[Tensor]):
    """Decoder-only causal Transformer as in the GLS paper (spec-gls §1.3): inputs embedded by
    ``Linear(F_in, H)``, ``num_layers`` post-norm ``TransformerEncoderLayer``s (``nhead`` heads,
    feed-forward ``2H``, ReLU) under a causal mask, no positional encoding (the official code;
    the time features carry position), then the shared low-rank head.

    ``attention_window`` (default: the unrolled context ``P = context_length - max(lags)``)
    limits attention to the last ``P`` positions, so every one-step prediction, in training
    and in the rolling sampler, has its own P-step context as in the paper — computed for all
    positions of a window in one pass.

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

    def _run(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[1]
        window = self.window if self.window > 0 else length
        mask = sliding_causal_mask(length, window, tokens.device)
        return self.layers(self.embed(tokens), mask=mask)

    @property
    def _receptive_field(self) -> int | None:
        """Tokens the newest position depends on through all layers: ``L (W - 1) + 1``."""
        return None if self.window <= 0 else self.num_layers * (self.window - 1) + 1

    def encode(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """State = the last input tokens within the receptive field (the sampler slides it)."""
        keep = self._receptive_field or inputs.shape[1]
        return self._run(inputs), inputs[:, -keep:]

    def step(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Exactly the training computation at the new position: the same sliding-window mask
        over the receptive field, so every layer sees what it saw when teacher-forced."""
        tokens = torch.cat([state, inputs], dim=1)
        if self._receptive_field is not None:
            tokens = tokens[:, -self._receptive_field :]
        return self._run(tokens)[:, -1], tokens

    def repeat_state(self, state: Tensor, times: int) -> Tensor:
        return repeat(state, "bn t f -> (s bn) t f", s=times)
