"""VolDy-VAE layers: the Koopa-style MLP and the scale heads (GRU / LSTM / memoryless MLP).

Axes: ``B`` windows, ``K`` past patches, ``M`` future patches, ``D`` latent size,
``O = P*C`` values per patch (patch length times channels).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

SCALE_HEADS: tuple[str, ...] = ("gru", "lstm", "mlp")


class MLP(nn.Sequential):
    """The MLP of Koopa / K²VAE / VolDy-VAE's code: ``hidden_layers`` counts the hidden blocks.

    ``Linear(f_in, h) -> ReLU -> Dropout``, then ``hidden_layers - 2`` times
    ``Linear(h, h) -> ReLU -> Dropout``, then ``Linear(h, f_out)``; so ``hidden_layers = 1`` and
    ``2`` give two linear layers and ``3`` gives three. ``hidden_layers = 0`` is one
    ``Linear(f_in, f_out)`` (the paper's "linear projection" reading of the location head).
    Applied to the last axis.
    """

    def __init__(
        self, f_in: int, f_out: int, hidden_dim: int, hidden_layers: int, dropout: float = 0.0
    ) -> None:
        if hidden_layers < 0:
            raise ValueError(f"MLP: hidden_layers must be >= 0; got {hidden_layers}")
        if hidden_layers == 0:
            super().__init__(nn.Linear(f_in, f_out))
            return
        layers: list[nn.Module] = [nn.Linear(f_in, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
        for _ in range(hidden_layers - 2):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_dim, f_out))
        super().__init__(*layers)


class RecurrentScaleHead(nn.Module):
    r"""Volatility head over patch latents (paper Eqs. 6-7), GRU or LSTM, one layer.

    .. math::
        h_k = \mathrm{RNN}(h_{k-1}, z_k), \qquad \sigma_k = \mathrm{softplus}(W h_k + b) + \xi

    run first over the past latents ``z_past [B, K, D]`` from a zero state, then over the future
    latents ``z_future [B, M, D]`` starting from the final past state (``state_transfer=True``,
    not detached), so the two stages equal one pass over ``[z_past; z_future]``. Each step emits
    one scale per patch value: ``sigma [B, K|M, O]``.
    """

    def __init__(
        self,
        latent_dim: int,
        hidden_size: int,
        out_dim: int,
        cell: str = "gru",
        min_scale: float = 1e-6,
        state_transfer: bool = True,
    ) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"RecurrentScaleHead: cell must be 'gru' or 'lstm'; got {cell!r}")
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(latent_dim, hidden_size, num_layers=1, batch_first=True)
        self.proj = nn.Linear(hidden_size, out_dim)
        self.min_scale = min_scale
        self.state_transfer = state_transfer

    def sigma(self, hidden: Tensor) -> Tensor:
        """``hidden [..., H]`` -> ``softplus(Linear(hidden)) + xi``, ``[..., O]``."""
        return F.softplus(self.proj(hidden)) + self.min_scale

    def forward(self, z_past: Tensor, z_future: Tensor) -> tuple[Tensor, Tensor]:
        """``z_past [B, K, D]``, ``z_future [B, M, D]`` -> ``sigma_past [B, K, O]``,
        ``sigma_future [B, M, O]``."""
        h_past, state = self.rnn(z_past)
        h_future, _ = self.rnn(z_future, state if self.state_transfer else None)
        return self.sigma(h_past), self.sigma(h_future)


class MLPScaleHead(nn.Module):
    r"""Memoryless ablation (paper Table VI, "MLP"): each patch's scale from its own latent,
    :math:`\sigma_k = \mathrm{softplus}(\mathrm{MLP}(z_k)) + \xi` with one hidden layer."""

    def __init__(
        self, latent_dim: int, hidden_size: int, out_dim: int, min_scale: float = 1e-6
    ) -> None:
        super().__init__()
        self.mlp = MLP(latent_dim, out_dim, hidden_size, hidden_layers=1)
        self.min_scale = min_scale

    def forward(self, z_past: Tensor, z_future: Tensor) -> tuple[Tensor, Tensor]:
        """Same signature as ``RecurrentScaleHead.forward``."""
        return (
            F.softplus(self.mlp(z_past)) + self.min_scale,
            F.softplus(self.mlp(z_future)) + self.min_scale,
        )


def build_scale_head(
    kind: str,
    latent_dim: int,
    hidden_size: int,
    out_dim: int,
    min_scale: float,
    state_transfer: bool = True,
) -> nn.Module:
    """``gru`` | ``lstm`` -> ``RecurrentScaleHead``; ``mlp`` -> ``MLPScaleHead``."""
    if kind not in SCALE_HEADS:
        raise ValueError(f"scale_head must be one of {SCALE_HEADS}; got {kind!r}")
    if kind == "mlp":
        return MLPScaleHead(latent_dim, hidden_size, out_dim, min_scale)
    return RecurrentScaleHead(latent_dim, hidden_size, out_dim, kind, min_scale, state_transfer)
