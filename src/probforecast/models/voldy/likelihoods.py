"""Observation likelihoods of VolDy-VAE's decoder (paper Eq. 9 and the Table VIII ablation).

All functions are elementwise on tensors of one shape (any axes).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from probforecast.models.noise import SampleNoise

LIKELIHOODS: tuple[str, ...] = ("gaussian", "laplace", "student_t")

#: The official code clamps the scale to this range inside the loss (spec pitfall P3).
SCALE_CLAMP: tuple[float, float] = (1e-6, 1e3)


def elementwise_nll(
    kind: str, value: Tensor, loc: Tensor, scale: Tensor, df: Tensor | None = None
) -> Tensor:
    r"""Negative log-likelihood per element, constants that do not depend on the parameters
    dropped for the Gaussian and the Laplace (so values can be negative).

    - ``gaussian`` (paper Eq. 9): :math:`\log\sigma + (u-\mu)^2 / (2\sigma^2)`;
      :math:`\partial/\partial\mu = -(u-\mu)/\sigma^2` (Eq. 10, "adaptive attenuation").
    - ``laplace``: :math:`\log b + |u-\mu|/b` with ``b = scale``.
    - ``student_t``: the full :math:`-\log t_\nu((u-\mu)/\sigma)/\sigma` with ``df = nu``.

    ``scale`` is clamped to ``SCALE_CLAMP`` first, as the official code does.
    """
    scale = scale.clamp(*SCALE_CLAMP)
    resid = value - loc
    if kind == "gaussian":
        return scale.log() + 0.5 * (resid / scale).square()
    if kind == "laplace":
        return scale.log() + resid.abs() / scale
    if kind == "student_t":
        if df is None:
            raise ValueError("the student_t likelihood needs df")
        z2 = (resid / scale).square()
        return (
            scale.log()
            + 0.5 * (df + 1) * torch.log1p(z2 / df)
            + 0.5 * torch.log(df * math.pi)
            + torch.lgamma(0.5 * df)
            - torch.lgamma(0.5 * (df + 1))
        )
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {kind!r}")


def sample_noise(
    kind: str,
    loc: Tensor,
    scale: Tensor,
    df: Tensor | None = None,
    noise: SampleNoise | None = None,
) -> Tensor:
    """One draw per element from the likelihood with parameters ``loc``, ``scale`` (, ``df``).

    ``loc, scale [B, ...]`` with the windows first; ``noise`` (default: the global RNG) is the
    source. By transformation of standard draws: Gaussian ``loc + scale z``; Laplace
    ``loc - scale sign(u) log(1 - |u|)``, ``u ~ U(-1, 1)``; Student-t
    ``loc + scale z / sqrt(2 g / nu)``, ``g ~ Gamma(nu / 2, 1)``.
    """
    if kind not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {kind!r}")
    if kind == "student_t" and df is None:
        raise ValueError("the student_t likelihood needs df")
    noise = SampleNoise.resolve(noise, loc.shape[0])
    if kind == "laplace":
        eps = torch.finfo(loc.dtype).eps
        u = (eps - 1) + (2 - eps) * noise.rand(loc.shape, dtype=loc.dtype, device=loc.device)
        return loc - scale * u.sign() * torch.log1p(-u.abs())
    z = noise.randn_like(loc)
    if kind == "gaussian":
        return loc + scale * z
    assert df is not None
    nu = df.to(loc.dtype).expand_as(loc)
    gamma = noise.standard_gamma(0.5 * nu).clamp_min(torch.finfo(loc.dtype).tiny)
    return loc + scale * z * torch.rsqrt(2 * gamma / nu)


def predictive_std(kind: str, scale: Tensor, df: Tensor | None = None) -> Tensor:
    """Standard deviation of one observation given the decoder's ``scale`` (``inf`` for
    Student-t with ``df <= 2``): Gaussian ``sigma``, Laplace ``sqrt(2) b``,
    Student-t ``sigma sqrt(nu / (nu - 2))``."""
    if kind == "gaussian":
        return scale
    if kind == "laplace":
        return scale * math.sqrt(2.0)
    if kind == "student_t":
        if df is None:
            raise ValueError("the student_t likelihood needs df")
        ratio = torch.where(df > 2, df / (df - 2).clamp_min(1e-12), torch.full_like(df, math.inf))
        return scale * ratio.sqrt()
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {kind!r}")
