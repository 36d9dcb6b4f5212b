r"""The optimiser of CW-Gen's end-to-end training (official ``cw_*_e2e.py``): AdamW with two
parameter groups and per-model gradient clipping.

The official code builds ``AdamW([{generator params, lr_gen, wd_gen}, {JMCE params, lr_JMCE,
wd_JMCE}])`` with ``lr_JMCE = 1e-4`` and, after ``backward``, clips each model's gradient
separately, ``clip_grad_norm_(jmce.parameters(), 1)`` and ``clip_grad_norm_(generator, 1)``:

.. math::
    g_G \leftarrow g_G \min(1, c / \lVert g_G\rVert_2), \qquad
    g_J \leftarrow g_J \min(1, c / \lVert g_J\rVert_2)

(one global clip would scale both by the norm of the concatenation).

``ForecastModule`` hands the optimiser a flat list of parameters, so the groups are found by a
tag: ``CWGenerator`` marks every JMCE parameter (``mark_jmce_parameters``). Untagged parameters
(any other forecaster) all land in the first group, where ``CWAdamW`` is plain AdamW with
clipping. Set ``trainer.gradient_clip_val: null`` with it (Lightning's global clip would run
first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

JMCE_TAG = "_cwgen_jmce"


def mark_jmce_parameters(module: nn.Module) -> None:
    """Tag ``module``'s parameters as the JMCE group of ``CWAdamW``."""
    for p in module.parameters():
        setattr(p, JMCE_TAG, True)


def is_jmce_parameter(p: Tensor) -> bool:
    return bool(getattr(p, JMCE_TAG, False))


class CWAdamW(torch.optim.AdamW):
    """AdamW over ``[generator group, JMCE group]`` with per-group clipping (module docstring).

    Args:
        params: parameters (a flat iterable; JMCE parameters found by their tag).
        lr, weight_decay: the generator group's (and any untagged parameter's).
        jmce_lr: the JMCE group's learning rate (official e2e: 1e-4).
        jmce_weight_decay: the JMCE group's weight decay (default: ``weight_decay``).
        max_norm: each group's gradient is clipped to this L2 norm before the update
            (official: 1.0); ``None`` disables clipping.
        **kwargs: other ``torch.optim.AdamW`` arguments (betas, eps, amsgrad, ...).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        jmce_lr: float = 1e-4,
        jmce_weight_decay: float | None = None,
        max_norm: float | None = 1.0,
        **kwargs,
    ) -> None:
        params = list(params)
        if any(isinstance(p, dict) for p in params):
            raise ValueError("CWAdamW builds its own parameter groups: pass a flat parameter list")
        if max_norm is not None and max_norm <= 0:
            raise ValueError(f"max_norm must be > 0 or None; got {max_norm}")
        generator = [p for p in params if not is_jmce_parameter(p)]
        jmce = [p for p in params if is_jmce_parameter(p)]
        groups: list[dict[str, Any]] = []
        if generator:
            groups.append({"params": generator, "name": "generator"})
        if jmce:
            wd = weight_decay if jmce_weight_decay is None else jmce_weight_decay
            groups.append({"params": jmce, "lr": jmce_lr, "weight_decay": wd, "name": "jmce"})
        super().__init__(groups, lr=lr, weight_decay=weight_decay, **kwargs)
        self.max_norm = max_norm

    def clip_group_gradients(self) -> dict[str, float]:
        """Clip every group's gradient to ``max_norm`` in place; returns the norms before."""
        norms: dict[str, float] = {}
        for group in self.param_groups:
            grads = [p for p in group["params"] if p.grad is not None]
            if grads and self.max_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(grads, self.max_norm)
                norms[group.get("name", str(len(norms)))] = float(norm)
        return norms

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.clip_group_gradients()
        super().step()
        return loss
