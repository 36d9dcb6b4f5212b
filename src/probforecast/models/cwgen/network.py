r"""The contract between a CW generator (``CWDiff``, ``CWFlow``, ``CWFlowTS``) and its network.

Axes: ``B`` windows, ``R`` rows (windows, or windows x samples at sampling), ``P`` history,
``Q`` horizon, ``N`` series, ``F`` time features.

A generator network is an ``nn.Module`` built as ``cls(target_dim=N, context_length=P,
prediction_length=Q, num_time_features=F, **init_args)`` (it may ignore the facts it does not
need) with two methods:

* ``condition(history [B, P, N], future_time_feat [B, Q, F]) -> cond``: what the network
  computes from a window's history once per window (``None`` when it computes nothing ahead);
  a tensor ``cond`` has the window axis first, ``[B, ...]``. At sampling its rows are repeated
  with the samples, so it must not depend on other rows in eval mode.
* ``forward(x [R, Q, N], t [R], history [R, P, N], cond [R, ...] | None) -> [R, Q, N]``:

  - ``x``: the noisy whitened target ``y_t`` (CW-Diff; identity whitening for ``prior:
    standard``) or the interpolant ``X_tau`` (CW-Flow);
  - ``t``: the diffusion step ``0..T-1`` (integer-valued float) for CW-Diff; for CW-Flow the
    flow time ``tau`` in ``[0, 1]`` times the generator's ``time_scale`` (``CWFlow``: 1000, the
    scale ``ConditionalDenoiser`` was built for; ``CWFlowTS``: 1, FlowTS' own);
  - ``history``: the window's (standardised) history; ``cond``: ``condition``'s output for the
    same rows;
  - output: the prediction of ``y_0`` (``parameterization: x0``) or of ``eps`` (CW-Diff), or
    the velocity (CW-Flow).

In YAML the network is a ``class_path`` spec::

    network:
      class_path: probforecast.models.cwgen.networks.TimeDiffNet
      init_args: {channels: 256}

``network: null`` (the default) builds ``ConditionalDenoiser`` from the generator's
``d_model``, ``n_heads``, ``num_layers``, ``d_ff``, ``dropout``, as before the contract existed.
"""

from __future__ import annotations

from typing import Any, cast, overload

from torch import Tensor, nn

from probforecast.utils.init_spec import RecordsInitArgs, import_path

DATA_FACTS = ("target_dim", "context_length", "prediction_length", "num_time_features")


class GeneratorNetwork(RecordsInitArgs, nn.Module):
    """Base of the networks (module docstring); ``condition`` defaults to computing nothing."""

    def condition(self, history: Tensor, future_time_feat: Tensor) -> Tensor | None:
        return None

    def forward(self, x: Tensor, t: Tensor, history: Tensor, cond: Tensor | None) -> Tensor:
        raise NotImplementedError


def resolve_class(class_path: str) -> type:
    if "." not in class_path:
        raise ValueError(f"network class_path must be 'package.module.Class'; got {class_path!r}")
    try:
        cls = import_path(class_path)
    except ValueError as err:
        raise ValueError(f"network class_path {class_path!r} cannot be imported: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"network class_path {class_path!r} is not an nn.Module subclass")
    return cls


def build_network(spec: dict[str, Any], **facts: int) -> GeneratorNetwork:
    """``spec = {"class_path": ..., "init_args": {...}}`` -> the network, given the data facts
    ``target_dim``, ``context_length``, ``prediction_length``, ``num_time_features``."""
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(
            "network must be {class_path: package.module.Class, init_args: {...}}; got "
            f"{spec!r}"
        )
    unknown = set(spec) - {"class_path", "init_args"}
    if unknown:
        raise ValueError(f"network spec has unknown keys {sorted(unknown)}")
    init = dict(spec.get("init_args") or {})
    clash = sorted(set(init) & set(DATA_FACTS))
    if clash:
        raise ValueError(f"network init_args must not set {clash}: they come from the data")
    cls = resolve_class(spec["class_path"])
    net = cls(**facts, **init)
    for method in ("condition", "forward"):
        if not callable(getattr(net, method, None)):
            raise ValueError(f"network {spec['class_path']} has no {method}() (network contract)")
    # the contract is structural: any nn.Module with both methods, checked above
    return cast(GeneratorNetwork, net)


@overload
def repeat_rows(value: Tensor, s: int) -> Tensor: ...
@overload
def repeat_rows(value: None, s: int) -> None: ...
@overload
def repeat_rows(value: Tensor | None, s: int) -> Tensor | None: ...


def repeat_rows(value: Tensor | None, s: int) -> Tensor | None:
    """``[B, ...] -> [B * S, ...]`` with row ``b * S + j`` = row ``b`` (the ``(b s)`` order of the
    samplers); ``None`` stays ``None``."""
    return None if value is None else value.repeat_interleave(s, dim=0)
