"""Every W&B sweep in configs/sweeps/ is well formed, and every swept parameter is a CLI
argument: the command an agent would run (``--key=value`` appended) parses, links and lands the
value in the instantiated objects' config."""

from __future__ import annotations

import warnings

import pytest
import yaml

from probforecast.cli import ProbForecastCLI
from probforecast.metrics import build_metric_collection
from tests.conftest import REPO

SWEEPS = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))
METHODS = {"grid", "random", "bayes"}


def agent_value(spec: dict):
    """One value the agent could draw: the last listed value, or the upper bound."""
    if "values" in spec:
        return spec["values"][-1]
    if "value" in spec:
        return spec["value"]
    return spec["max"]


def dig(config, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def test_there_are_sweeps():
    assert SWEEPS, "configs/sweeps/ holds at least one sweep"


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_command_parses_with_the_agent_arguments(path, tmp_path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in METHODS
    assert sweep["metric"]["goal"] in ("minimize", "maximize")
    logged = set(build_metric_collection("val/").keys()) | {"val/loss"}
    assert sweep["metric"]["name"] in logged, "the sweep optimises a metric the module logs"
    command = sweep["command"]
    assert command[0] == "${env}" and command[-1] == "${args}"
    assert "probforecast" in command and "fit" in command
    base = command[command.index("fit") + 1 : -1]
    config_file = base[base.index("--config") + 1]
    assert (REPO / config_file).is_file(), f"{config_file} (relative to the repository root)"
    swept = {key: agent_value(spec) for key, spec in sweep["parameters"].items()}
    agent_args = [f"--{key}={value}" for key, value in swept.items()]
    warnings.simplefilter("ignore")
    cli = ProbForecastCLI(
        args=[
            *(str(REPO / arg) if arg == config_file else arg for arg in base),
            *agent_args,
            *("--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)),
            *("--data.cache_dir", str(tmp_path / "cache")),
        ],
        run=False,
    )
    for key, value in swept.items():
        assert dig(cli.config, key) == value, key
