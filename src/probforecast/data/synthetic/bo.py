"""Bayesian-optimised mixture weights (spec-dynlmc §3.4, Algorithm 2) with optuna's TPE.

Mixture weights on the simplex over the sources are parameterised as ``w_m in [1e-3, 1]`` per
source, ``gamma = w / sum(w)``; the first trial is the uniform mixture (enqueued). Each trial
evaluates ``objective(gamma)`` (e.g. train a forecaster on windows allocated by ``gamma`` and
return its MAE on a real validation split); ``gamma* = argmin`` over the trials.
Needs the ``synth`` extra (``pip install probforecast[synth]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixtureTrial:
    number: int
    gamma: tuple[float, ...]
    loss: float


@dataclass(frozen=True)
class MixtureSearch:
    sources: tuple[str, ...]
    best: MixtureTrial
    trials: tuple[MixtureTrial, ...]


def optimise_mixture(
    objective: Callable[[np.ndarray], float],
    sources: Sequence[str],
    n_trials: int,
    seed: int = 0,
    min_weight: float = 1e-3,
) -> MixtureSearch:
    """TPE search of ``gamma`` minimising ``objective(gamma)`` over ``n_trials`` trials."""
    try:
        import optuna
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the mixture search needs optuna: pip install 'probforecast[synth]'"
        ) from err
    if n_trials < 1 or len(sources) < 2:
        raise ValueError(f"need n_trials >= 1 and >= 2 sources; got {n_trials}, {list(sources)}")
    names = [f"w_{i}_{s}" for i, s in enumerate(sources)]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(dict.fromkeys(names, 1.0))  # gamma^(0) = uniform
    trials: list[MixtureTrial] = []

    def run(trial) -> float:
        w = np.array([trial.suggest_float(n, min_weight, 1.0) for n in names])
        gamma = w / w.sum()
        loss = float(objective(gamma))
        trials.append(MixtureTrial(trial.number, tuple(float(g) for g in gamma), loss))
        log.info("trial %d gamma=%s loss=%.4f", trial.number, np.round(gamma, 3), loss)
        return loss

    study.optimize(run, n_trials=n_trials)
    best = min(trials, key=lambda t: t.loss)
    return MixtureSearch(tuple(sources), best, tuple(trials))
