"""VolDy-VAE's constructor: the official code's defaults and one clear error per bad value."""

from __future__ import annotations

import inspect

import pytest

from probforecast.models import VolDyVAE


def test_defaults_are_the_official_configs_values():
    """beta 0.01 (KL weight), xi = 1e-6 (scale floor), sigma left in RevIN-normalised units,
    GRU scale head with the transferred state, Gaussian likelihood, edge padding."""
    defaults = {
        k: p.default for k, p in inspect.signature(VolDyVAE).parameters.items()
        if p.default is not inspect.Parameter.empty
    }  # fmt: skip
    assert defaults["beta"] == 0.01 and defaults["min_scale"] == 1e-6
    assert defaults["rescale_sigma"] is False and defaults["revin"] is True
    assert defaults["scale_head"] == "gru" and defaults["state_transfer"] is True
    assert defaults["likelihood"] == "gaussian" and defaults["padding"] == "edge"
    assert defaults["freq"] == "h"
    m = VolDyVAE(2, 48, 24, latent_dim=8, mlp_hidden=16)
    assert m.beta == 0.01 and m.rescale_sigma is False and m.freq == "h"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"likelihood": "cauchy"}, "VolDyVAE: likelihood must be one of"),
        ({"padding": "zero"}, "VolDyVAE: padding must be one of"),
        ({"patch_len": 0}, "VolDyVAE: patch_len must be a positive integer; got 0"),
        ({"mlp_hidden": 0}, "VolDyVAE: mlp_hidden must be a positive integer; got 0"),
        (
            {"beta": -0.1},
            "VolDyVAE: expected beta >= 0, min_scale > 0 and 0 <= dropout < 1; got beta=-0.1",
        ),
        ({"min_scale": 0.0}, "got beta=0.01, min_scale=0.0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"dropout": -0.1}, "dropout=-0.1"),
        ({"rescale_sigma": True, "revin": False}, "VolDyVAE: rescale_sigma=True needs revin=True"),
    ],
)
def test_each_bad_value_raises_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        VolDyVAE(2, 48, 24, **{"latent_dim": 8, "mlp_hidden": 16, **kwargs})


def test_limits_that_are_allowed():
    VolDyVAE(2, 48, 24, patch_len=1, latent_dim=1, mlp_hidden=1, dropout=0.0, beta=0.0)
    assert VolDyVAE(2, 48, 24, latent_dim=8, mlp_hidden=16, revin=False).revin is None
