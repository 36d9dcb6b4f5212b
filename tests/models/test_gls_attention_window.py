"""``TransformerForecaster.attention_window``: position ``t`` of the teacher-forced pass sees the
inputs ``t - W + 1 .. t`` only (``W = 0``: all of ``0 .. t``). Checked by perturbing one input
position and finding which outputs move (a dependency reference independent of the mask code)."""

from __future__ import annotations

import pytest
import torch

from probforecast.models import TransformerForecaster

T = 7


def encoder(window: int) -> TransformerForecaster:
    torch.manual_seed(0)
    model = TransformerForecaster(
        target_dim=3,
        context_length=20,
        prediction_length=2,
        freq="D",
        hidden_size=8,
        lags=[1, 2],
        dropout=0.0,
        attention_window=window,
    )
    return model.double().eval()


def moved_positions(model, source: int) -> list[int]:
    """Output positions that change when the input at ``source`` changes."""
    x = torch.randn(2, T, model.input_size, dtype=torch.float64)
    bumped = x.clone()
    bumped[:, source] += 1.0
    with torch.no_grad():
        out, _ = model.encode(x)
        out2, _ = model.encode(bumped)
    assert torch.isfinite(out).all() and torch.isfinite(out2).all()
    change = (out - out2).abs().amax(dim=(0, 2))
    return [t for t in range(T) if change[t] > 1e-9]


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (0, [2, 3, 4, 5, 6]),  # unlimited causal attention: every later position (2 layers)
        (1, [2]),  # each position attends to itself only
        (2, [2, 3, 4]),  # two layers of a width-2 window: receptive field 3
    ],
)
def test_attention_window_sets_the_receptive_field(window, expected):
    model = encoder(window)
    assert model.window == window
    assert moved_positions(model, 2) == expected


def test_default_window_is_the_unrolled_context():
    model = TransformerForecaster(
        target_dim=3, context_length=20, prediction_length=2, freq="D", hidden_size=8, lags=[1, 2]
    )
    assert model.window == 20 - 2
