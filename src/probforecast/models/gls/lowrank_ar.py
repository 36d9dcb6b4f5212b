"""Autoregressive low-rank Gaussian forecasters with the GLS (temporally correlated) likelihood.

Shared by ``GPVar`` (LSTM) and ``TransformerForecaster`` (decoder-only Transformer); a subclass
only provides the backbone (``encode`` a sequence, ``step`` one position, ``repeat_state``).
Method: Zheng & Sun (NeurIPS 2024), spec-gls §1-§3.

Per series ``i`` and step ``t`` the backbone state ``h_{i,t}`` gives ``mu_{i,t}``, a factor row
``l_{i,t} in R^R`` and a variance ``d_{i,t}``; across series ``z_t = mu_t + L_t r_t + eps_t``.

- ``likelihood: independent`` (GPVar): ``r_t ~ N(0, I_R)`` independently over time, i.e.
  ``z_t ~ N(mu_t, L_t L_t^T + diag(d_t))``.
- ``likelihood: gls``: over a window of ``D`` consecutive steps the latent rows are
  ``r ~ N(0, C_t kron I_R)`` with ``C_t`` a D x D correlation matrix from the state (kernel
  mixture or AR(p)); the window's ``DB`` errors are jointly Gaussian (``gls_log_prob``).

Training teacher-forces the whole window in ONE backbone pass (the official code re-encodes the
context D times). Prediction rolls forward Q steps; with ``gls`` each step samples the error from
its conditional law given the last ``D - 1`` errors of the same sample path (paper Eq. 12), the
buffer seeded with the context's one-step residuals. All sample paths run as one batch.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, Generic, Literal, TypeVar

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from probforecast.data.batch import ForecastBatch
from probforecast.distributions import (
    ARCorrelation,
    gls_conditional_next,
    gls_log_prob,
    log_det_corr,
)
from probforecast.models.base import Forecaster
from probforecast.models.gls.copula import EmpiricalCopula
from probforecast.models.gls.heads import LowRankGaussianHead
from probforecast.models.gls.lag_leak import (
    LagLeak,
    check_lag_leak,
    check_leak_batch,
    leak_source,
    leaked_lags,
    replay_lag_leak,
)
from probforecast.models.gls.lags import default_lags, lagged_values
from probforecast.models.gls.path_noise import PathNoise
from probforecast.models.gls.temporal_correlation import (
    CorrelationKind,
    TemporalCorrelation,
    given_options,
)
from probforecast.models.noise import SampleNoise

log = logging.getLogger(__name__)

Likelihood = Literal["independent", "gls"]
#: ``reg_w`` of ``likelihood: gls`` when none is given: the official code's CLI default.
DEFAULT_REG_W = 2.5
# what specs recorded for the correlation options before they became kind-specific
LEGACY_CORRELATION_DEFAULTS: dict[str, Any] = {
    "correlation": "kernel",
    "num_components": 3,
    "lengthscales": None,
    "lengthscale_start": 1.0,
    "learn_lengthscales": False,
    "ar_order": 1,
}
Marginal = Literal["gaussian", "copula"]
#: the backbone's recurrent state (GPVar: the LSTM's ``(h, c)``; Transformer: its input tokens)
StateT = TypeVar("StateT")


class LowRankARForecaster(Forecaster, Generic[StateT]):
    """Base class; see the module docstring. ``StateT``: the type of the backbone state that
    ``encode`` returns and ``step`` / ``repeat_state`` take.

    Args:
        hidden_size: backbone width ``H``.
        rank: ``R`` of the covariance factor (paper: 10).
        embedding_dim: series-embedding width (0 disables it).
        lags: lagged values fed as inputs (default by ``freq``: hourly [1, 24, 168], ...).
            ``context_length`` (from the data) must exceed ``max(lags)``; the backbone unrolls
            over the last ``context_length - max(lags)`` context steps (the paper's ``P``).
        likelihood: ``independent`` (w/o) or ``gls`` (w/).
        cross_correlation_horizon: ``D`` (default ``Q``); must divide ``Q``, and
            ``context_length - max(lags) >= D - 1``.
        correlation: ``kernel`` (SE mixture + identity, the default) or ``ar`` (AR(p)
            Toeplitz, block-banded). This and the five options below configure ``C``: with
            ``likelihood: independent`` they are errors, as are the options of the other kind.
        num_components: see ``TemporalCorrelation``.
        lengthscales: see ``TemporalCorrelation``.
        lengthscale_start: see ``TemporalCorrelation``.
        learn_lengthscales: see ``TemporalCorrelation``.
        ar_order: see ``TemporalCorrelation``.
        reg_w: weight of the official code's regulariser (``train_batch.py``, CLI default 2.5;
            not in the paper's text): each window's loss is ``NLL_w - reg_w * log|C_w|`` with
            ``NLL_w`` the NLL *summed* over the window's ``D x B`` values, the official units
            (see ``loss``). ``log|C| <= 0`` for a correlation matrix, so it pulls ``C`` towards
            ``I``. Default (``None``): ``DEFAULT_REG_W`` = 2.5 with ``likelihood: gls``; with
            ``reg_w = 0`` the kernel-mixture weights can collapse onto the smoothest SE kernel
            early in training and stay there (measured on exchange_rate_nips, docs/gls_accuracy.md);
            2.5 keeps ``C`` near ``I``, which loses GLS's gain on strongly autocorrelated
            errors (on the synthetic benchmark GLS only beats ``independent`` at 0). When the
            error correlation is unknown, train ``reg_w`` in {0, 0.5, 2.5} and keep the run
            with the lowest validation NLL (``scripts/gls_select_reg_w.py``): measured, it
            picks 0 on the synthetic data and never the collapsed run on exchange_rate_nips.
            An error with ``likelihood: independent``, which has no ``C``.
        sigma_init: initial standard deviation of the head.
        sigma_min: floor of the head's standard deviation (``d >= sigma_min^2``).
        marginal: ``gaussian`` (the GLS paper and its code) or ``copula``: GPVar's Gaussian
            copula, i.e. the model (inputs, likelihood, sampling) works on
            ``Phi^{-1}(F~_i(z))`` with ``F~_i`` the Winsorised empirical CDF of series ``i`` in
            the window's context, and samples are mapped back through its quantile function
            (``probforecast.models.gls.copula``).
        sample_group_size: ``G``, or ``None`` (default) to sample all ``N`` series jointly.
            With ``G < N``, ``sample`` draws consecutive groups of ``G`` series independently of
            each other (each group its own low-rank factor, GLS buffer and ``C_t``, which is
            averaged over the group's series), as the official GLS code does: its test loader
            hands the model batches of ``B`` series (m4_hourly: 20). The marginal of each group
            is unchanged; cross-group covariance is zero, which changes CRPS-sum. Prediction
            only: training and ``loss`` do not read it.
        future_lag_leak: ``none`` (default), ``at_lag`` or ``horizon``: replay an official GLS
            predictor's true horizon values in lagged inputs, to reproduce a paper's number
            (``probforecast.models.gls.lag_leak``: ``at_lag`` the paper's GPVar w/o, GPVar w/
            and Transformer w/o predictors, ``horizon`` its Transformer w/ predictor). Not a
            forecast: ``sample`` then reads ``future_target``.
    """

    per_window_noise = True

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
        hidden_size: int = 40,
        rank: int = 10,
        embedding_dim: int = 8,
        lags: list[int] | None = None,
        likelihood: Likelihood = "gls",
        cross_correlation_horizon: int | None = None,
        correlation: CorrelationKind | None = None,
        num_components: int | None = None,
        lengthscales: list[float] | None = None,
        lengthscale_start: float | None = None,
        learn_lengthscales: bool | None = None,
        ar_order: int | None = None,
        reg_w: float | None = None,
        sigma_init: float = 1.0,
        sigma_min: float = 1e-3,
        marginal: Marginal = "gaussian",
        sample_group_size: int | None = None,
        future_lag_leak: LagLeak = "none",
    ) -> None:
        super().__init__(target_dim, context_length, prediction_length, freq, num_time_features)
        self.lags = sorted(set(lags or default_lags(freq)))
        if min(self.lags) < 1:
            raise ValueError(f"lags must be >= 1; got {self.lags}")
        self.max_lag = max(self.lags)
        self.unrolled_context = context_length - self.max_lag
        if self.unrolled_context < 1:
            raise ValueError(
                f"data.context_length={context_length} must exceed the largest lag {self.max_lag} "
                f"(lags {self.lags}); use context_length >= {self.max_lag + prediction_length}"
            )
        if likelihood not in ("independent", "gls"):
            raise ValueError(f"likelihood must be 'independent' or 'gls'; got {likelihood!r}")
        self.likelihood = likelihood
        if marginal not in ("gaussian", "copula"):
            raise ValueError(f"marginal must be 'gaussian' or 'copula'; got {marginal!r}")
        self.marginal = marginal
        self.horizon_d = cross_correlation_horizon or prediction_length
        if prediction_length % self.horizon_d:
            raise ValueError(
                f"cross_correlation_horizon={self.horizon_d} must divide prediction_length={prediction_length}"
            )
        if likelihood == "gls" and self.unrolled_context < self.horizon_d - 1:
            raise ValueError(
                f"the GLS sampler conditions on the last D-1={self.horizon_d - 1} context residuals: "
                f"need data.context_length >= max(lags) + D - 1 = {self.max_lag + self.horizon_d - 1}"
            )
        c_options: dict[str, Any] = {
            "num_components": num_components,
            "lengthscales": lengthscales,
            "lengthscale_start": lengthscale_start,
            "learn_lengthscales": learn_lengthscales,
            "ar_order": ar_order,
        }
        given = given_options(correlation=correlation, **c_options)
        if likelihood == "independent" and given:
            raise ValueError(
                f"{given} configure the GLS correlation C, which likelihood 'independent' does "
                "not have; remove them or use likelihood: gls"
            )
        if likelihood == "independent" and reg_w is not None:
            raise ValueError(
                f"reg_w={reg_w} regularises the GLS correlation C, which likelihood "
                "'independent' does not have; remove reg_w or use likelihood: gls"
            )
        if reg_w is not None and reg_w < 0:
            raise ValueError(f"reg_w must be >= 0; got {reg_w}")
        self.reg_w = (DEFAULT_REG_W if reg_w is None else reg_w) if likelihood == "gls" else 0.0
        self.hidden_size, self.rank = hidden_size, rank
        self.embedding = nn.Embedding(target_dim, embedding_dim) if embedding_dim > 0 else None
        self.input_size = len(self.lags) + 1 + num_time_features + embedding_dim
        self.head = LowRankGaussianHead(hidden_size, rank, sigma_init, sigma_min)
        self.correlation = (
            TemporalCorrelation(hidden_size, self.horizon_d, correlation or "kernel", **c_options)
            if likelihood == "gls"
            else None
        )
        if sample_group_size is not None and sample_group_size < 1:
            raise ValueError(f"sample_group_size must be >= 1 or null; got {sample_group_size}")
        self.sample_group_size = sample_group_size
        check_lag_leak(future_lag_leak)
        self.future_lag_leak = future_lag_leak
        self.pending_fallbacks = 0  # since the last ``sampling_diagnostics()`` read

    # ------------------------------------------------------------------ backbone contract
    @abstractmethod
    def encode(self, inputs: Tensor) -> tuple[Tensor, StateT]:
        """``inputs [BN, T, F_in] -> (hidden [BN, T, H], state)`` (teacher-forced, causal)."""

    @abstractmethod
    def step(self, inputs: Tensor, state: StateT) -> tuple[Tensor, StateT]:
        """One new position: ``inputs [BN, 1, F_in] -> (hidden [BN, H], state)``."""

    @abstractmethod
    def repeat_state(self, state: StateT, times: int) -> StateT:
        """Repeat a state over sample paths: batch order ``(b n) -> (s b n)``."""

    # ------------------------------------------------------------------ features
    def _inputs(
        self, seq: Tensor, observed: Tensor, time_feat: Tensor, series_ids: Tensor, start: int
    ) -> Tensor:
        """Inputs of positions ``start..T-1``: lagged values, observed flag of lag 1, time
        features, series embedding. ``seq, observed [B, T, N]``, ``time_feat [B, T, F]``
        -> ``[B, T - start, N, F_in]``."""
        lagged = lagged_values(seq, self.lags, start)
        b, t, n, _ = lagged.shape
        parts = [
            lagged,
            observed[:, start - 1 : seq.shape[1] - 1].unsqueeze(-1).to(seq.dtype),
            time_feat[:, start:].unsqueeze(2).expand(b, t, n, time_feat.shape[-1]),
        ]
        if self.embedding is not None:
            parts.append(self.embedding(series_ids)[:, None].expand(b, t, n, -1))
        return torch.cat(parts, dim=-1)

    def _hidden(self, inputs: Tensor) -> tuple[Tensor, StateT]:
        """``[B, T, N, F_in] -> hidden [B, T, N, H]`` and the backbone state."""
        b, _, n, _ = inputs.shape
        hidden, state = self.encode(rearrange(inputs, "b t n f -> (b n) t f"))
        return rearrange(hidden, "(b n) t h -> b t n h", b=b, n=n), state

    # ------------------------------------------------------------------ training
    @classmethod
    def upgrade_init_args(cls, init_args: dict[str, Any]) -> dict[str, Any]:
        """Specs written before the correlation options became kind-specific (2026-12-03)
        recorded every default: ``correlation: kernel``, ``num_components: 3``,
        ``lengthscales: None``, ``lengthscale_start: 1.0``, ``learn_lengthscales: False``,
        ``ar_order: 1``. Those that the spec's likelihood and kind do not use are dropped when
        they hold the old default; any other value still raises."""
        args = dict(init_args)
        old_defaults = LEGACY_CORRELATION_DEFAULTS
        if args.get("likelihood", "gls") == "independent":
            unused = set(old_defaults)
        elif args.get("correlation") == "ar":
            unused = set(old_defaults) - {"correlation", "ar_order"}
        else:
            unused = {"ar_order"}
        for name in unused:
            if name in args and args[name] == old_defaults[name]:
                del args[name]
        return args

    def loss(self, batch: ForecastBatch) -> Tensor:
        """Negative log-likelihood per observed horizon value, plus the GLS regulariser.

        The horizon of each window ``b`` is cut into ``W = Q / D`` blocks ``w`` of ``D`` steps
        (``D = 1`` for ``independent``); with ``n_obs`` the number of observed horizon values,

            loss = sum_{b,w} [ -log p(z_{b,w}) - reg_w * log|C_{b,w}| ] / n_obs,

        ``log p(z_{b,w})`` the GLS log density of the block's ``D x N`` values (missing ones
        marginalised) and ``C_{b,w}`` its ``D x D`` correlation, from the state at the block's
        last step. Per block this is the official code's loss ``NLL_w - reg_w log|C_w|``
        (up to the common factor ``1 / n_obs``)."""
        self.check_batch(batch)
        seq = torch.cat([batch.past_target, batch.future_target], dim=1)
        copula = self._copula(batch)
        if copula is not None:
            seq = copula.to_gaussian(seq)
        observed = torch.cat([batch.past_observed, batch.future_observed], dim=1)
        time_feat = torch.cat([batch.past_time_feat, batch.future_time_feat], dim=1)
        hidden, _ = self._hidden(
            self._inputs(seq, observed, time_feat, batch.series_ids, self.max_lag)
        )
        q, d = self.prediction_length, self.horizon_d if self.likelihood == "gls" else 1
        hidden = hidden[:, -q:]  # horizon positions [B, Q, N, H]
        mu, factor, diag = self.head(hidden)
        windows = "b (w d) n -> b w d n"
        value = rearrange(seq[:, -q:], windows, d=d)
        mask = rearrange(batch.future_observed, windows, d=d)
        if self.correlation is not None:
            corr = self.correlation(hidden[:, d - 1 :: d])  # state at each window's last step
        else:
            corr = torch.ones(1, 1, dtype=mu.dtype, device=mu.device)
        log_prob = gls_log_prob(
            value,
            rearrange(mu, windows, d=d),
            rearrange(factor, "b (w d) n r -> b w d n r", d=d),
            rearrange(diag, windows, d=d),
            corr,
            mask=mask,
        )
        total = -log_prob.sum()
        if self.correlation is not None and self.reg_w > 0:
            logdet = corr.logdet() if isinstance(corr, ARCorrelation) else log_det_corr(corr)
            total = total - self.reg_w * logdet.sum()
        return total / mask.sum().clamp_min(1)

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        """``[B, S, Q, N]`` sample paths rolled forward step by step (see module docstring);
        groups of ``sample_group_size`` series are drawn independently, in order."""
        self.check_batch(batch)
        noise = SampleNoise.resolve(noise, batch.batch_size)
        check_leak_batch(self.future_lag_leak, batch)
        n, group = batch.num_series, self.sample_group_size
        if group is None or group >= n:
            return self._sample_jointly(batch, num_samples, noise)
        return torch.cat(
            [
                self._sample_jointly(batch.select_series(slice(i, i + group)), num_samples, noise)
                for i in range(0, n, group)
            ],
            dim=-1,
        )

    def _sample_jointly(self, batch: ForecastBatch, num_samples: int, noise: SampleNoise) -> Tensor:
        """``[B, S, Q, N]``: all ``N`` series of ``batch`` in one joint draw."""
        b, p, n = batch.past_target.shape
        s, q, d = num_samples, self.prediction_length, self.horizon_d
        copula = self._copula(batch)
        past = batch.past_target if copula is None else copula.to_gaussian(batch.past_target)
        ctx_inputs = self._inputs(
            past,
            batch.past_observed,
            batch.past_time_feat,
            batch.series_ids,
            self.max_lag,
        )
        ctx_hidden, state = self._hidden(ctx_inputs)
        state = self.repeat_state(state, s)

        paths = repeat(past, "b t n -> (s b) t n", s=s)
        paths = torch.cat([paths, paths.new_zeros(s * b, q, n)], dim=1)
        observed = torch.cat(
            [
                repeat(batch.past_observed, "b t n -> (s b) t n", s=s),
                paths.new_ones(s * b, q, n, dtype=torch.bool),
            ],
            dim=1,
        )
        time_feat = repeat(
            torch.cat([batch.past_time_feat, batch.future_time_feat], dim=1),
            "b t f -> (s b) t f",
            s=s,
        )
        ids = repeat(batch.series_ids, "b n -> (s b) n", s=s)

        truth = leak_source(self.future_lag_leak, batch, copula)
        buffer = None
        if self.correlation is not None and d > 1:
            # one-step residuals of the last D-1 context steps seed every path's buffer
            mu_c, factor_c, diag_c = self.head(ctx_hidden[:, -(d - 1) :])
            eta_c = past[:, -(d - 1) :] - mu_c
            obs_c = batch.past_observed[:, -(d - 1) :]
            buffer = [
                repeat(x, "b ... -> (s b) ...", s=s)
                for x in (torch.where(obs_c, eta_c, 0.0), factor_c, diag_c, obs_c)
            ]

        draw = PathNoise(noise, s)
        for step in range(q):
            t = p + step
            x = self._inputs(paths[:, : t + 1], observed[:, : t + 1], time_feat[:, : t + 1], ids, t)
            if truth is not None:
                x = replay_lag_leak(x, *truth, leaked_lags(self.future_lag_leak, self.lags, step))
            hidden, state = self.step(rearrange(x, "sb 1 n f -> (sb n) 1 f"), state)
            hidden = rearrange(hidden, "(sb n) h -> sb n h", n=n)
            mu, factor, diag = self.head(hidden)
            if self.correlation is None:
                eta = draw.lowrank(torch.zeros_like(mu), factor, diag)
            else:
                eta = self._conditional_draw(hidden, factor, diag, buffer, draw)
            paths[:, t] = mu + eta
        samples = rearrange(paths[:, p:], "(s b) q n -> b s q n", s=s)
        return samples if copula is None else copula.from_gaussian(samples)

    def _copula(self, batch: ForecastBatch) -> EmpiricalCopula | None:
        """The window's empirical marginals (``marginal: copula``), fitted on its context."""
        if self.marginal != "copula":
            return None
        return EmpiricalCopula.fit(batch.past_target, batch.past_observed)

    def _conditional_draw(
        self,
        hidden: Tensor,
        factor: Tensor,
        diag: Tensor,
        buffer: list[Tensor] | None,
        draw: PathNoise,
    ) -> Tensor:
        """Draw eta_{t+1} | last D-1 errors of the path (Eq. 12), and push it into the buffer."""
        if buffer is None:  # D = 1: no temporal correlation to condition on
            return draw.lowrank(torch.zeros_like(diag), factor, diag)
        assert self.correlation is not None  # a buffer exists only with likelihood: gls
        corr = self.correlation(hidden)  # C_{t+1} from the state at the step being predicted
        chunks = (x.split(CONDITIONAL_ROWS_PER_SOLVE) for x in (*buffer, factor, diag, corr))
        parts = [
            gls_conditional_next(eta_b, factor_b, diag_b, factor_n, diag_n, corr_n, mask_obs=obs_b)
            for eta_b, factor_b, diag_b, obs_b, factor_n, diag_n, corr_n in zip(
                *chunks, strict=True
            )
        ]
        self.pending_fallbacks += sum(int(part.num_fallbacks) for part in parts)
        loc, cov_factor = (torch.cat([getattr(p, k) for p in parts]) for k in ("loc", "cov_factor"))
        eta = draw.lowrank(loc, cov_factor, diag)
        new = (eta, factor, diag, torch.ones_like(eta, dtype=torch.bool))
        for i, value in enumerate(new):
            buffer[i] = torch.cat([buffer[i][:, 1:], value.unsqueeze(1)], dim=1)
        return eta

    def sampling_diagnostics(self) -> dict[str, float]:
        """Counts over every ``sample`` call since the previous read, then reset (read once per
        batch by ``ForecastModule``, which calls ``sample`` once per window when seeding per
        window, and sums the counts over the epoch)."""
        if self.correlation is None:
            return {}
        count, self.pending_fallbacks = self.pending_fallbacks, 0
        return {"gls_conditional_fallbacks": float(count)}

    def diagnostic_figures(self, batch: ForecastBatch) -> dict[str, object]:
        """The learned ``C_t`` and mixture weights of the first window
        (:func:`probforecast.models.gls.views.correlation_views`); empty for ``independent``."""
        from probforecast.models.gls.views import correlation_views

        return correlation_views(self, batch)


#: Sample paths per conditional solve: the factorisations of ``(D-1) R``-sized matrices run
#: faster in small batches that stay in cache (640 paths at D = 24, R = 10, N = 8: 0.39 s in
#: chunks of 32 vs 1.02 s at once, one thread), so batching windows does not slow them down.
CONDITIONAL_ROWS_PER_SOLVE = 32
