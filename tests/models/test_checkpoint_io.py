"""``ForecastModule.load``: one way to rebuild a trained module from any of our checkpoints."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn

from probforecast.data import ForecastDataModule, SyntheticOptions
from probforecast.data.batch import ForecastBatch
from probforecast.data.errors import DataError
from probforecast.models import GaussianRNN
from probforecast.models.base import Forecaster
from probforecast.models.checkpoint_io import FORECASTER_SPEC_KEY
from probforecast.models.cwgen.network import GeneratorNetwork
from probforecast.models.module import ForecastModule
from probforecast.utils.checkpoint_meta import META_KEY, check_compatible, read_checkpoint
from probforecast.utils.init_spec import UnencodableArgument, stable_class_path

SETTINGS = {
    "interval_level": 0.95,
    "sample_seed_scope": "batch",
    "metric_aggregation": "window_mean",
    "quantile_method": "rank",
    "sample_seed": 7,
    "num_samples": 6,
    "val_num_samples": 4,
}


def tiny_datamodule() -> ForecastDataModule:
    dm = ForecastDataModule(
        "synthetic",
        context_length=24,
        prediction_length=6,
        batch_size=4,
        num_batches_per_epoch=2,
        synthetic=SyntheticOptions(num_series=3, length=300, num_test_windows=2),
    )
    dm.setup("fit")
    return dm


def facts(dm: ForecastDataModule) -> dict:
    return {
        "target_dim": dm.target_dim,
        "context_length": dm.context_length,
        "prediction_length": dm.prediction_length,
        "freq": dm.freq,
        "num_time_features": dm.num_time_features,
    }


def train_and_save(module: ForecastModule, dm: ForecastDataModule, path) -> None:
    warnings.simplefilter("ignore")
    trainer = pl.Trainer(
        max_epochs=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, dm)
    trainer.save_checkpoint(path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    dm = tiny_datamodule()
    module = ForecastModule(GaussianRNN(**facts(dm), hidden_size=6, num_layers=1), **SETTINGS)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    train_and_save(module, dm, path)
    return module, dm, path


def first_test_batch(dm: ForecastDataModule) -> ForecastBatch:
    dm.setup("test")
    return next(iter(dm.test_dataloader()))


def test_load_needs_no_config_and_restores_settings_weights_and_samples(saved):
    module, dm, path = saved
    loaded = ForecastModule.load(path)
    assert not loaded.training
    assert loaded.forecaster.init_spec() == module.forecaster.init_spec()
    for name, value in SETTINGS.items():
        assert loaded.hparams[name] == value, name
    assert loaded.sample_seed_scope == "batch" and loaded.num_samples == 6
    assert "coverage_95" in loaded.test_metrics.keys(keep_base=True)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    batch = first_test_batch(dm)
    module.eval()
    torch.testing.assert_close(loaded.draw_samples(batch, 5), module.draw_samples(batch, 5))


def test_checkpoint_stores_the_public_class_path_and_plain_arguments(saved):
    _, dm, path = saved
    meta = torch.load(path, weights_only=True)[META_KEY]
    assert meta["forecaster"] == "probforecast.models.GaussianRNN"
    assert meta[FORECASTER_SPEC_KEY] == {
        "class_path": "probforecast.models.GaussianRNN",
        "init_args": {
            **GaussianRNN(**facts(dm)).init_spec()["init_args"],
            "hidden_size": 6,
            "num_layers": 1,
        },
    }
    # LightningCLI re-parses hyper_parameters as ForecastModule arguments on --ckpt_path
    assert FORECASTER_SPEC_KEY not in torch.load(path, weights_only=True)["hyper_parameters"]


def test_a_class_moved_inside_the_package_still_loads(saved, monkeypatch):
    """Checkpoints name the class by its public path, so moving its file keeps them loadable."""
    _, _, path = saved
    monkeypatch.setattr(GaussianRNN, "__module__", "probforecast.models.moved_elsewhere")
    assert stable_class_path(GaussianRNN) == "probforecast.models.GaussianRNN"
    assert isinstance(ForecastModule.load(path).forecaster, GaussianRNN)


def test_stored_class_names_are_compared_as_classes():
    model = GaussianRNN(target_dim=2, context_length=4, prediction_length=2)
    # the module path older checkpoints stored still resolves to the same class
    check_compatible({"forecaster": "probforecast.models.gaussian_rnn.GaussianRNN"}, model, "x")
    for stored in ("probforecast.models.SeasonalNaive", "probforecast.models.gone.GaussianRNN"):
        with pytest.raises(DataError, match=f"holds a {stored} model"):
            check_compatible({"forecaster": stored}, model, "x")


class TinyNet(GeneratorNetwork):
    """A recorded component passed as an instance (nested spec)."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)


class WithComponent(Forecaster):
    """A forecaster whose argument is a component instance, plus a plain option."""

    def __init__(self, *, net: TinyNet, scale: float = 1.0, **data_facts) -> None:
        super().__init__(**data_facts)
        self.net, self.scale = net, scale
        self.bias = nn.Parameter(torch.zeros(self.target_dim))

    def loss(self, batch: ForecastBatch) -> Tensor:
        return ((batch.future_target - self.bias) ** 2).mean() * self.scale

    def sample(self, batch, num_samples, noise=None) -> Tensor:
        b, q = batch.batch_size, self.prediction_length
        return self.bias + torch.randn(b, num_samples, q, self.target_dim)


class WithTensorArgument(WithComponent):
    def __init__(self, *, weights: Tensor, **kwargs) -> None:
        super().__init__(net=TinyNet(), **kwargs)
        self.register_buffer("weights", weights)


def test_nested_component_arguments_are_rebuilt(tmp_path):
    dm = tiny_datamodule()
    model = WithComponent(net=TinyNet(width=5), scale=2.0, **facts(dm))
    spec = model.init_spec()
    assert spec["init_args"]["net"] == {
        "component": {"class_path": f"{__name__}.TinyNet", "init_args": {"width": 5}}
    }
    path = tmp_path / "nested.ckpt"
    train_and_save(ForecastModule(model), dm, path)
    loaded = ForecastModule.load(path).forecaster
    assert isinstance(loaded, WithComponent) and isinstance(loaded.net, TinyNet)
    assert loaded.net.proj.in_features == 5 and loaded.scale == 2.0
    torch.testing.assert_close(loaded.net.proj.weight, model.net.proj.weight)


def test_a_forecaster_with_unencodable_arguments_needs_forecaster(tmp_path):
    dm = tiny_datamodule()
    model = WithTensorArgument(weights=torch.ones(3), **facts(dm))
    with pytest.raises(UnencodableArgument, match="weights = Tensor is not plain data"):
        model.init_spec()
    path = tmp_path / "tensor.ckpt"
    train_and_save(ForecastModule(model), dm, path)
    assert torch.load(path, weights_only=True)[META_KEY][FORECASTER_SPEC_KEY] is None
    with pytest.raises(ValueError, match="carries no forecaster spec.*pass forecaster="):
        ForecastModule.load(path)
    again = WithTensorArgument(weights=torch.zeros(3), **facts(dm))
    loaded = ForecastModule.load(path, forecaster=again)
    torch.testing.assert_close(loaded.forecaster.weights, torch.ones(3))


def test_read_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nothing.ckpt not found"):
        read_checkpoint(tmp_path / "nothing.ckpt")
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(DataError, match="plain.pt is not a Lightning checkpoint"):
        ForecastModule.load(plain)


def test_positional_arguments_forwarded_through_args_are_named():
    """``GPVar(*args, **kwargs)`` forwards positionals to ``LowRankARForecaster``: the spec
    names them as that constructor does, so it equals the keyword call's."""
    from probforecast.models import GPVar

    positional = GPVar(3, 200, 4, "h", 0, hidden_size=8)
    keyword = GPVar(
        target_dim=3,
        context_length=200,
        prediction_length=4,
        freq="h",
        num_time_features=0,
        hidden_size=8,
    )
    assert positional.init_spec()["init_args"] == keyword.init_spec()["init_args"]


def test_checkpoints_naming_a_module_that_moved_still_resolve():
    """``probforecast.models.gpvar`` became ``probforecast.models.gls.gpvar`` (and VolDy-VAE's
    file ``models/voldy/model.py``): class paths stored by older checkpoints still resolve."""
    from probforecast.models import GPVar, VolDyVAE
    from probforecast.utils.init_spec import resolve_class_path

    assert resolve_class_path("probforecast.models.gpvar.GPVar") is GPVar
    assert resolve_class_path("probforecast.models.voldy_vae.VolDyVAE") is VolDyVAE
    model = GPVar(target_dim=2, context_length=200, prediction_length=2)
    check_compatible({"forecaster": "probforecast.models.gpvar.GPVar"}, model, "x")
