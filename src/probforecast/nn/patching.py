"""Non-overlapping, channel-mixing patches of a multivariate window and their inverse.

Axes: ``B`` windows, ``T`` steps, ``C`` channels, ``P`` patch length, ``K`` patches.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor

#: ``edge``: the ``pad`` missing steps are copies of the first step, put in front; the inverse
#: drops them, so patch steps align with the input (our default).
#: ``wrap``: the last ``pad`` steps are put in front (VolDy-VAE's official code); its inverse keeps
#: the first ``T`` steps, which are then shifted by ``pad`` against the input (spec pitfall P6).
PaddingMode = Literal["edge", "wrap"]
PADDING_MODES: tuple[str, ...] = ("edge", "wrap")


def num_patches(length: int, patch_len: int) -> int:
    """``ceil(length / patch_len)``: patches needed to cover ``length`` steps."""
    if length < 1 or patch_len < 1:
        raise ValueError(
            f"length and patch_len must be positive; got length={length}, patch_len={patch_len}"
        )
    return math.ceil(length / patch_len)


def patchify(x: Tensor, patch_len: int, padding: PaddingMode = "edge") -> Tensor:
    """``x [B, T, C]`` -> ``[B, K, P*C]`` with ``K = ceil(T / P)``.

    Each patch flattens ``P`` consecutive steps of all ``C`` channels (time-major:
    element ``p*C + c`` is step ``p``, channel ``c``). When ``T % P != 0`` the window is padded
    at the front to ``K*P`` steps according to ``padding`` (see ``PaddingMode``).
    """
    if x.dim() != 3:
        raise ValueError(f"patchify expects [B, T, C]; got shape {tuple(x.shape)}")
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}; got {padding!r}")
    t = x.shape[1]
    pad = num_patches(t, patch_len) * patch_len - t
    if pad:
        if padding == "edge":
            front = x[:, :1].expand(-1, pad, -1)
        else:
            if pad > t:
                raise ValueError(
                    f"padding='wrap' needs the window ({t} steps) to be at least the padding "
                    f"({pad} steps); use padding='edge'"
                )
            front = x[:, t - pad :]
        x = torch.cat([front, x], dim=1)
    return rearrange(x, "b (k p) c -> b k (p c)", p=patch_len)


def unpatchify(
    patches: Tensor, patch_len: int, length: int, padding: PaddingMode = "edge", past: bool = True
) -> Tensor:
    """``[B, K, P*C]`` -> ``[B, length, C]``, the inverse reshape of ``patchify``.

    ``past=True`` (a decoded look-back): with ``padding='edge'`` the first ``K*P - length`` steps
    (the padding) are dropped; with ``'wrap'`` the first ``length`` steps are kept, as the
    official code does. ``past=False`` (a forecast): the first ``length`` steps are kept.
    """
    if patches.dim() != 3 or patches.shape[-1] % patch_len:
        raise ValueError(
            f"unpatchify expects [B, K, P*C] with P={patch_len}; got shape {tuple(patches.shape)}"
        )
    x = rearrange(patches, "b k (p c) -> b (k p) c", p=patch_len)
    if x.shape[1] < length:
        raise ValueError(f"{patches.shape[1]} patches of {patch_len} cannot cover {length} steps")
    if past and padding == "edge":
        return x[:, x.shape[1] - length :]
    return x[:, :length]
