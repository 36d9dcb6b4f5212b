"""GPVar (Salinas et al. 2019) as used by the GLS paper: a shared LSTM over series with a
low-rank-plus-diagonal Gaussian head, with the independent or the GLS likelihood."""

from __future__ import annotations

from typing import Any

from einops import repeat
from torch import Tensor, nn

from probforecast.models.gls.lowrank_ar import LowRankARForecaster


class GPVar(LowRankARForecaster[tuple[Tensor, Tensor]]):
    """LSTM backbone (2 layers, dropout 0.01 in the paper); see ``LowRankARForecaster`` for the
    likelihood options and the data requirements.

    Args:
        num_layers: LSTM layers.
        dropout: between LSTM layers.
        *args: the other arguments of ``LowRankARForecaster``.
        **kwargs: the other arguments of ``LowRankARForecaster``.
    """

    def __init__(
        self, *args: Any, num_layers: int = 2, dropout: float = 0.01, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rnn = nn.LSTM(
            self.input_size,
            self.hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def encode(self, inputs: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        return self.rnn(inputs)

    def step(
        self, inputs: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        out, state = self.rnn(inputs, state)
        return out[:, -1], state

    def repeat_state(self, state: tuple[Tensor, Tensor], times: int) -> tuple[Tensor, Tensor]:
        hx, cx = state
        return (
            repeat(hx, "l bn h -> l (s bn) h", s=times),
            repeat(cx, "l bn h -> l (s bn) h", s=times),
        )
