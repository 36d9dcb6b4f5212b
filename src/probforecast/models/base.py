"""The ``Forecaster`` contract every model implements (see DESIGN.md, "Contracts")."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn

from probforecast.data.batch import ForecastBatch
from probforecast.models.noise import SampleNoise
from probforecast.utils.init_spec import RecordsInitArgs

#: Constructor arguments every forecaster takes from the data (linked by the CLI, passed by the
#: API); configs never repeat them.
DATA_FACTS = ("target_dim", "context_length", "prediction_length", "freq", "num_time_features")


class Forecaster(RecordsInitArgs, nn.Module, ABC):
    """A probabilistic multivariate forecaster working in scaled space.

    The data facts below are linked from the DataModule by the CLI; configs never repeat them.

    Args:
        target_dim: ``N``, number of series in the dataset.
        context_length: ``P``.
        prediction_length: ``Q``.
        freq: pandas frequency string of the data.
        num_time_features: ``F``, width of ``past_time_feat`` / ``future_time_feat``.

    Class attribute ``per_window_noise``: ``True`` when ``sample`` draws all of its randomness
    through its ``noise`` argument (:class:`~probforecast.models.noise.SampleNoise`); then
    ``ForecastModule`` samples a whole batch in one call with one random stream per window.
    ``False`` (the default, e.g. a model that calls ``torch.randn`` itself): the module calls
    ``sample`` once per window on the re-seeded global RNG.

    Every forecaster records its constructor arguments (``init_spec()``, see
    ``probforecast.utils.init_spec``); ``ForecastModule`` stores them in its checkpoints, so
    ``ForecastModule.load(path)`` rebuilds the model with no config. Arguments should therefore
    be plain data (numbers, strings, lists, dicts) or recorded components.
    """

    per_window_noise: bool = False

    def __init__(
        self,
        target_dim: int,
        context_length: int,
        prediction_length: int,
        freq: str = "h",
        num_time_features: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("target_dim", target_dim),
            ("context_length", context_length),
            ("prediction_length", prediction_length),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{type(self).__name__}: {name} must be a positive integer; got {value!r}"
                )
        self.target_dim = target_dim
        self.context_length = context_length
        self.prediction_length = prediction_length
        self.freq = freq
        self.num_time_features = num_time_features

    @abstractmethod
    def loss(self, batch: ForecastBatch) -> Tensor:
        """Scalar training loss to minimise."""

    @abstractmethod
    def sample(
        self, batch: ForecastBatch, num_samples: int, noise: SampleNoise | None = None
    ) -> Tensor:
        """``[B, S, Q, N]`` samples of the horizon, in scaled space; ``noise`` (``None``: the
        global RNG) is the source of randomness for models with ``per_window_noise``."""

    def sampling_diagnostics(self) -> dict[str, float]:
        """Counts accumulated by ``sample`` since the previous read, then reset (e.g. GLS
        sampler fallbacks). ``ForecastModule`` reads them after every evaluation batch, sums them
        over the epoch and logs ``<stage>/diagnostics/<key>``. Default: none."""
        return {}

    def diagnostic_figures(self, batch: ForecastBatch) -> dict[str, object]:
        """Dashboard views of what the model learned, ``name -> matplotlib Figure``, for one
        evaluation window (``probforecast.callbacks.ModelViews``: rank zero, eval mode, no
        grad, RNG state restored). Default: none."""
        return {}

    def check_batch(self, batch: ForecastBatch) -> None:
        """Validate a batch against the linked data facts (one clear message)."""
        b, p, n = batch.past_target.shape
        if p != self.context_length or batch.future_time_feat.shape[1] != self.prediction_length:
            raise ValueError(
                f"{type(self).__name__} was built for context_length={self.context_length}, "
                f"prediction_length={self.prediction_length}; got a batch with P={p}, "
                f"Q={batch.future_time_feat.shape[1]}"
            )
        if batch.past_time_feat.shape[-1] != self.num_time_features:
            raise ValueError(
                f"{type(self).__name__} expects {self.num_time_features} time features; "
                f"got {batch.past_time_feat.shape[-1]}"
            )


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over the entries where ``mask`` is True (0 if none)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)
