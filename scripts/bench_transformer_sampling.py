"""Transformer sampler: cached keys and values vs two references, in one process.

Ours runs one query per layer over cached, already projected keys and values
(``probforecast.models.gls.cached_encoder``). The references: "input cache" keeps every layer's
inputs and re-projects the window's keys and values at each step through
``nn.MultiheadAttention`` (the implementation before 2026-12-03); "receptive field" re-runs all
``L (W - 1) + 1`` tokens of the receptive field through the full sliding-window encoder at
every sampled position (the implementation before any cache). All sample the same model with
the same seed, alternating; the script prints the time of each, the ratios and the largest
difference between the sets of samples (float rounding only).

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


class InputCacheTransformer(TransformerForecaster):
    """The first cached reference: the state is every layer's last ``W - 1`` inputs, whose keys
    and values ``nn.MultiheadAttention`` projects again at every step."""

    def encode(self, inputs):  # type: ignore[override]  # the reference's own state type
        x = self.embed(inputs)
        mask = sliding_causal_mask(x.shape[1], self.window, x.device)
        caches = []
        for layer in self.layers.layers:
            caches.append(x[:, -(self.window - 1) :])
            x = layer(x, src_mask=mask)
        return x, caches

    def step(self, inputs, state):  # type: ignore[override]
        x, new_state = self.embed(inputs), []
        for layer, cache in zip(self.layers.layers, state, strict=True):
            keys = torch.cat([cache, x], dim=1)
            new_state.append(keys[:, -(self.window - 1) :])
            x = layer.norm1(x + layer.self_attn(x, keys, keys, need_weights=False)[0])
            x = layer.norm2(x + layer.linear2(layer.activation(layer.linear1(x))))
        return x[:, -1], new_state


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
    models = {"cached keys/values": ours}
    for name, cls in (("input cache", InputCacheTransformer), ("receptive field", ReceptiveFieldTransformer)):  # fmt: skip
        models[name] = cls(*facts, dm.num_time_features, **kwargs).eval()
        models[name].load_state_dict(ours.state_dict())
    times: dict[str, list[float]] = {name: [] for name in models}
    draws = {}
    for _ in range(args.repeats):  # alternate, so a busy neighbour hits all alike
        for name, model in models.items():
            torch.manual_seed(1)
            start = time.perf_counter()
            draws[name] = model.sample(batch, args.samples)
            times[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(f"N={args.series} S={args.samples} Q={args.horizon} P=48 L=2 H=20, one thread, best of {args.repeats}:")  # fmt: skip
    for name in models:
        gap = (draws[name] - draws["cached keys/values"]).abs().max().item()
        print(
            f"  {name:>18}: {best[name]:.2f} s, {best[name] / best['cached keys/values']:.2f}x ours; "
            f"max |difference| of the samples from ours {gap:.2e}"
        )


if __name__ == "__main__":
    main()
