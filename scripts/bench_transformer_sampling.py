"""Transformer sampler: cached decoding vs re-running the receptive field, in one process.

The reference re-runs all ``L (W - 1) + 1`` tokens of the receptive field through the full
sliding-window encoder at every sampled position (the implementation before the cache); ours
runs one query per layer over cached keys and values (``probforecast.models.gls.cached_encoder``). Both
sample the same model with the same seed; the script prints the time of each, their ratio and
the largest difference between the two sets of samples (float rounding only).

    OMP_NUM_THREADS=1 python scripts/bench_transformer_sampling.py --series 40 --repeats 3
"""

from __future__ import annotations

import argparse
import time

import torch
from einops import repeat
from torch import Tensor

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.models import TransformerForecaster
from probforecast.models.gls.transformer import sliding_causal_mask


class ReceptiveFieldTransformer(TransformerForecaster):
    """The reference: the state is the last ``L (W - 1) + 1`` input tokens, re-encoded in full
    at every step."""

    def _run(self, tokens: Tensor) -> Tensor:
        window = self.window if self.window > 0 else tokens.shape[1]
        mask = sliding_causal_mask(tokens.shape[1], window, tokens.device)
        return self.layers(self.embed(tokens), mask=mask)

    def _field(self, length: int) -> int:
        return length if self.window <= 0 else self.num_layers * (self.window - 1) + 1

    def encode(self, inputs):  # type: ignore[override]  # the reference's own state type
        return self._run(inputs), inputs[:, -self._field(inputs.shape[1]) :]

    def step(self, inputs, state):  # type: ignore[override]
        tokens = torch.cat([state, inputs], dim=1)
        tokens = tokens[:, -self._field(tokens.shape[1]) :]
        return self._run(tokens)[:, -1], tokens

    def repeat_state(self, state, times):  # type: ignore[override]
        return repeat(state, "bn t f -> (s bn) t f", s=times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dm = ForecastDataModule(
        "synthetic",
        context_length=216,  # m4_hourly's paper setting: lags [1, 24, 168] + P = 48
        prediction_length=args.horizon,
        eval_batch_size=1,
        synthetic=SyntheticOptions(num_series=args.series, length=600, num_test_windows=1),
    )
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    kwargs = dict(hidden_size=20, rank=10, lags=[1, 24, 168], likelihood="independent")
    facts = (dm.target_dim, dm.context_length, dm.prediction_length, dm.freq)
    torch.manual_seed(0)
    ours = TransformerForecaster(*facts, dm.num_time_features, **kwargs).eval()
    reference = ReceptiveFieldTransformer(*facts, dm.num_time_features, **kwargs).eval()
    reference.load_state_dict(ours.state_dict())
    times: dict[str, list[float]] = {"cached": [], "receptive field": []}
    draws = {}
    for _ in range(args.repeats):  # alternate, so a busy neighbour hits both alike
        for name, model in (("cached", ours), ("receptive field", reference)):
            torch.manual_seed(1)
            start = time.perf_counter()
            draws[name] = model.sample(batch, args.samples)
            times[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    gap = (draws["cached"] - draws["receptive field"]).abs().max().item()
    print(
        f"N={args.series} S={args.samples} Q={args.horizon} P=48 L=2 H=20, one thread, "
        f"best of {args.repeats}: cached {best['cached']:.2f} s, receptive field "
        f"{best['receptive field']:.2f} s, speed-up {best['receptive field'] / best['cached']:.1f}x; "
        f"max |difference| of the samples {gap:.2e}"
    )


if __name__ == "__main__":
    main()
