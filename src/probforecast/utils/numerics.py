"""Numerical-fault reporting: say *where* a NaN/Inf came from instead of training on it."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

MAX_NAMES = 5


class NonFiniteError(FloatingPointError):
    """A loss or a sample became NaN/Inf; the message names the model part and the batch."""


def non_finite_parameters(module: nn.Module) -> list[str]:
    """Names of the parameters (``submodule.weight`` ...) holding a NaN or Inf."""
    return [name for name, p in module.named_parameters() if not bool(torch.isfinite(p).all())]


def non_finite_fields(batch) -> list[str]:
    """Names of the floating-point fields of a batch dataclass holding a NaN or Inf."""
    names = []
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
            names.append(field.name)
    return names


def describe_non_finite(module: nn.Module, batch) -> str:
    """One clause locating the fault: the non-finite parameters, else the non-finite batch
    fields, else "parameters and inputs are finite" (the forward pass itself overflowed)."""
    params = non_finite_parameters(module)
    if params:
        more = f" and {len(params) - MAX_NAMES} more" if len(params) > MAX_NAMES else ""
        return f"non-finite parameters: {', '.join(params[:MAX_NAMES])}{more}"
    fields = non_finite_fields(batch)
    if fields:
        return f"non-finite batch inputs: {', '.join(fields)}"
    return (
        "parameters and inputs are finite, so the forward pass overflowed "
        f"(parts: {', '.join(n for n, _ in module.named_children()) or type(module).__name__})"
    )
