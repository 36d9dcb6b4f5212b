r"""Non-stationary Transformer (Liu et al., NeurIPS 2022), the JMCE backbone (spec-cwgen §4.3).

Axes: ``B`` windows, ``L`` encoder (history) length, ``T`` decoder length
(``label_len + Q``), ``C`` channels, ``F`` time features, ``E`` model width.

Series stationarisation normalises every channel of the history by its own window mean and
std (over time, biased, ``+1e-5``). The de-stationary factors are learned from the raw series:
``tau = exp(Projector(x, sigma))`` (one positive scalar per window) and
``delta = Projector(x, mu)`` (one offset per encoder position). De-stationary attention is

.. math::
    \mathrm{DSAttn}(Q, K, V) = \mathrm{softmax}\Big(\frac{\tau\, Q K^\top + \mathbf 1 \delta^\top}
    {\sqrt{E_h}}\Big) V ,

where ``delta`` shifts the logits of each key position (encoder self-attention and decoder
cross-attention; the decoder's masked self-attention uses ``tau`` only, as the official code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class DSAttention(nn.Module):
    """Multi-head de-stationary attention: ``q [B, T, E]``, ``kv [B, S, E]`` -> ``[B, T, E]``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, causal: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads, self.causal = n_heads, causal
        self.q, self.k, self.v = (nn.Linear(d_model, d_model) for _ in range(3))
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, kv: Tensor, tau: Tensor, delta: Tensor | None) -> Tensor:
        h = self.n_heads
        q = rearrange(self.q(x), "b t (h e) -> b h t e", h=h)
        k = rearrange(self.k(kv), "b s (h e) -> b h s e", h=h)
        v = rearrange(self.v(kv), "b s (h e) -> b h s e", h=h)
        scale = 1.0 / math.sqrt(q.shape[-1])
        bias = None  # additive logits [B or 1, 1, T or 1, S]: delta / sqrt(E_h) and the causal mask
        if delta is not None:
            bias = (delta * scale).reshape(delta.shape[0], 1, 1, -1)
        if self.causal:
            t, s = q.shape[-2], k.shape[-2]
            future = torch.ones(t, s, dtype=torch.bool, device=x.device).triu(1)
            causal = torch.zeros(t, s, dtype=q.dtype, device=x.device).masked_fill(
                future, float("-inf")
            )
            bias = causal if bias is None else bias + causal
        # softmax((tau Q) K^T / sqrt(E_h) + bias) V, fused
        out = F.scaled_dot_product_attention(
            q * tau.reshape(-1, 1, 1, 1),
            k,
            v,
            attn_mask=bias,
            dropout_p=self.dropout.p if self.training else 0.0,
        )
        return self.out(rearrange(out, "b h t e -> b t (h e)"))


class _FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.SiLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class EncoderLayer(nn.Module):
    """Post-norm block: DS self-attention, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.attn = DSAttention(d_model, n_heads, dropout)
        self.ff = _FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, tau: Tensor, delta: Tensor) -> Tensor:
        x = self.norm1(x + self.dropout(self.attn(x, x, tau, delta)))
        return self.norm2(x + self.dropout(self.ff(x)))


class DecoderLayer(nn.Module):
    """Post-norm block: masked DS self-attention (tau only), DS cross-attention, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attn = DSAttention(d_model, n_heads, dropout, causal=True)
        self.cross_attn = DSAttention(d_model, n_heads, dropout)
        self.ff = _FeedForward(d_model, d_ff, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, tau: Tensor, delta: Tensor) -> Tensor:
        x = self.norms[0](x + self.dropout(self.self_attn(x, x, tau, None)))
        x = self.norms[1](x + self.dropout(self.cross_attn(x, memory, tau, delta)))
        return self.norms[2](x + self.dropout(self.ff(x)))


class Projector(nn.Module):
    """``x [B, L, C]``, ``stat [B, 1, C]`` -> ``[B, out]``: circular Conv1d over time (``L -> 1``
    channel, kernel 3), concatenated with the statistic, then an MLP (ReLU, no last bias)."""

    def __init__(self, channels: int, seq_len: int, hidden: list[int], out_dim: int):
        super().__init__()
        self.conv = nn.Conv1d(seq_len, 1, 3, padding=1, padding_mode="circular", bias=False)
        dims = [2 * channels, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], out_dim, bias=False))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor, stat: Tensor) -> Tensor:
        z = torch.cat([self.conv(x), stat], dim=1)  # [B, 2, C]
        return self.mlp(rearrange(z, "b two c -> b (two c)"))


class DataEmbedding(nn.Module):
    """Token (circular Conv1d, kernel 3) + sinusoidal position + linear time-feature embedding."""

    def __init__(self, channels: int, num_time_features: int, d_model: int, dropout: float):
        super().__init__()
        self.token = nn.Conv1d(channels, d_model, 3, padding=1, padding_mode="circular")
        self.time = nn.Linear(num_time_features, d_model) if num_time_features else None
        self.dropout = nn.Dropout(dropout)
        self.d_model = d_model

    def forward(self, x: Tensor, marks: Tensor) -> Tensor:
        out = rearrange(self.token(rearrange(x, "b t c -> b c t")), "b e t -> b t e")
        out = out + sinusoidal_positions(x.shape[1], self.d_model, x.device, x.dtype)
        if self.time is not None:
            out = out + self.time(marks)
        return self.dropout(out)


def sinusoidal_positions(length: int, dim: int, device, dtype) -> Tensor:
    """``[length, dim]`` Transformer positional encoding (sin on even, cos on odd columns)."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device).float() * (-math.log(1e4) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe.to(dtype)


class NonStationaryTransformer(nn.Module):
    """Encoder-decoder NS-Transformer: ``x_enc [B, L, C]``, marks ``[B, L, F]`` and
    ``[B, label_len + Q, F]`` -> ``[B, Q, C]`` (normalised output, plus the history ``mean`` and
    ``std [B, 1, C]`` for the caller's de-normalisation).

    The decoder input is the last ``label_len`` normalised history steps followed by ``Q`` zeros.
    """

    def __init__(
        self,
        channels: int,
        seq_len: int,
        pred_len: int,
        label_len: int,
        num_time_features: int,
        d_model: int = 64,
        n_heads: int = 4,
        e_layers: int = 2,
        d_layers: int = 1,
        d_ff: int = 128,
        dropout: float = 0.1,
        projector_hidden: tuple[int, ...] = (64, 64),
    ) -> None:
        super().__init__()
        if not 0 <= label_len <= seq_len:
            raise ValueError(f"label_len must be in [0, {seq_len}]; got {label_len}")
        self.pred_len, self.label_len = pred_len, label_len
        self.enc_embedding = DataEmbedding(channels, num_time_features, d_model, dropout)
        self.dec_embedding = DataEmbedding(channels, num_time_features, d_model, dropout)
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(e_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(d_layers)
        )
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, channels)
        self.tau_learner = Projector(channels, seq_len, list(projector_hidden), 1)
        self.delta_learner = Projector(channels, seq_len, list(projector_hidden), seq_len)

    def forward(
        self, x_enc: Tensor, marks_enc: Tensor, marks_dec: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        raw = x_enc.detach()
        mean = x_enc.mean(1, keepdim=True).detach()  # [B, 1, C]
        std = torch.sqrt(x_enc.var(1, keepdim=True, unbiased=False) + 1e-5).detach()
        x = (x_enc - mean) / std
        tau = self.tau_learner(raw, std).exp()  # [B, 1]
        delta = self.delta_learner(raw, mean)  # [B, L]
        dec_in = F.pad(x[:, x.shape[1] - self.label_len :], (0, 0, 0, self.pred_len))
        enc = self.enc_embedding(x, marks_enc)
        for layer in self.encoder:
            enc = layer(enc, tau, delta)
        enc = self.enc_norm(enc)
        dec = self.dec_embedding(dec_in, marks_dec)
        for layer in self.decoder:
            dec = layer(dec, enc, tau, delta)
        out = self.projection(self.dec_norm(dec))[:, -self.pred_len :]
        return out, mean, std
