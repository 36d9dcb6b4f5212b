r"""The blocks of ``FlowTSNet`` (``flowts.py``, whose docstring states the math): time
embedding, adaptive layer norm, RMS-normalised attention with optional rotary embeddings, the
encoder and decoder blocks with their trend (cubic polynomial) and Fourier-season parts.

Axes: ``R`` rows, ``T`` sequence length, ``E`` width.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional


def sinusoidal(t: Tensor, dim: int) -> Tensor:
    """``t [R] -> [R, dim]``: ``[sin(t w_k), cos(t w_k)]``, ``w_k = 10000^{-k/(dim/2 - 1)}``."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class AdaLayerNorm(nn.Module):
    """``LN(x) (1 + a) + b``, ``[a; b] = W silu(sinusoidal(t))``; ``x [R, T, E]``, ``t [R]``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.linear = nn.Linear(width, 2 * width)
        self.norm = nn.LayerNorm(width, elementwise_affine=False)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.linear(functional.silu(sinusoidal(t, self.width).to(x.dtype))).unsqueeze(1)
        scale, shift = emb.chunk(2, dim=2)
        return self.norm(x) * (1 + scale) + shift


class RMSNorm(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, x: Tensor) -> Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.square().mean(-1, keepdim=True) + 1e-6)
        return y.to(x.dtype) * self.scale


def rotary(x: Tensor, base: float = 50000.0) -> Tensor:
    """Rotary embedding of ``x [R, H, T, D]``: pairs ``(2j, 2j+1)`` rotated by ``pos * base^(-2j/D)``."""
    d, length = x.shape[-1], x.shape[-2]
    freqs = 1.0 / base ** (torch.arange(0, d, 2, device=x.device)[: d // 2].float() / d)
    angles = torch.outer(torch.arange(length, device=x.device, dtype=torch.float32), freqs)
    rot = torch.polar(torch.ones_like(angles), angles)  # [T, D/2]
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rot).flatten(-2).type_as(x)


class Attention(nn.Module):
    """Multi-head attention with ``RMSNorm(q) + 0.1 q`` (and ``k``); ``rope`` on q, k."""

    def __init__(self, width: int, heads: int, dropout: float, rope: bool) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        self.key, self.query, self.value = (nn.Linear(width, width) for _ in range(3))
        self.q_norm, self.k_norm = RMSNorm(width), RMSNorm(width)
        self.attn_drop, self.resid_drop = nn.Dropout(dropout), nn.Dropout(dropout)
        self.proj = nn.Linear(width, width)
        self.heads, self.rope = heads, rope

    def forward(self, x: Tensor, memory: Tensor | None = None) -> Tensor:
        memory = x if memory is None else memory
        k, q, v = self.key(memory), self.query(x), self.value(memory)
        k = self.k_norm(k) + 0.1 * k
        q = self.q_norm(q) + 0.1 * q
        k, q, v = (rearrange(a, "r t (h d) -> r h t d", h=self.heads) for a in (k, q, v))
        if self.rope:
            q, k = rotary(q), rotary(k)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
        y = self.attn_drop(att.softmax(-1)) @ v
        return self.resid_drop(self.proj(rearrange(y, "r h t d -> r t (h d)")))


def _mlp(width: int, times: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(width, times * width),
        nn.GELU(),
        nn.Linear(times * width, width),
        nn.Dropout(dropout),
    )


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_times: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = AdaLayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads, dropout, rope=False)
        self.mlp = _mlp(width, mlp_times, dropout)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x, t))
        return x + self.mlp(self.ln2(x))


class TrendBlock(nn.Module):
    """``[R, T, E] -> [R, T, N]``: ``sum_{p=1..3} c_p(n) ((i+1)/(T+1))^p``."""

    def __init__(self, length: int, width: int, n: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(length, 3, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, n, kernel_size=3, padding=1)
        grid = torch.arange(1, length + 1, dtype=torch.float32) / (length + 1)
        self.register_buffer("poly", torch.stack([grid**p for p in (1, 2, 3)]), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        coef = self.conv2(functional.gelu(self.conv1(x)).transpose(1, 2))  # [R, N, 3]
        return (coef @ self.poly.to(x.dtype)).transpose(1, 2)


def fourier_season(x: Tensor) -> Tensor:
    """``[R, T, E] -> [R, T, E]``: the ``floor(ln F)`` largest-amplitude rFFT bins of each
    channel (bin 0 and, for even ``T``, the Nyquist bin excluded; ``F`` bins left), re-synthesised
    as ``sum 2 |c| cos(2 pi f i + arg c)`` (conjugate pairs; unnormalised, as FlowTS)."""
    length = x.shape[1]
    spec = torch.fft.rfft(x, dim=1)
    freq = torch.fft.rfftfreq(length, device=x.device)
    stop = -1 if length % 2 == 0 else None
    spec, freq = spec[:, 1:stop], freq[1:stop]
    k = int(math.log(spec.shape[1]))
    idx = spec.abs().topk(k, dim=1).indices  # [R, k, E]
    coef = spec.gather(1, idx)
    f = freq[idx]  # [R, k, E]
    steps = torch.arange(length, device=x.device, dtype=x.dtype)
    phase = 2 * math.pi * f.unsqueeze(2) * steps[None, None, :, None] + coef.angle().unsqueeze(2)
    return (2 * coef.abs().unsqueeze(2) * torch.cos(phase)).sum(1)


class DecoderBlock(nn.Module):
    def __init__(self, length: int, n: int, width: int, heads: int, mlp_times: int, dropout: float):
        super().__init__()
        self.ln1, self.ln1_1, self.ln2 = (
            AdaLayerNorm(width),
            AdaLayerNorm(width),
            nn.LayerNorm(width),
        )
        self.attn1 = Attention(width, heads, dropout, rope=False)
        self.attn2 = Attention(width, heads, dropout, rope=True)
        self.trend = TrendBlock(length, width, n)
        self.proj = nn.Conv1d(length, 2 * length, kernel_size=1)
        self.mlp = _mlp(width, mlp_times, dropout)
        self.linear = nn.Linear(width, n)

    def forward(self, x: Tensor, memory: Tensor, t: Tensor):
        x = x + self.attn1(self.ln1(x, t))
        x = x + self.attn2(self.ln1_1(x, t), memory)
        x1, x2 = self.proj(x).chunk(2, dim=1)
        trend, season = self.trend(x1), fourier_season(x2)
        x = x + self.mlp(self.ln2(x))
        m = x.mean(1, keepdim=True)
        return x - m, self.linear(m), trend, season
