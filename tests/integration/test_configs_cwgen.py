"""Every CW-Gen YAML config (JMCE, CW-Diff, CW-Flow, their TimeDiff / FlowTS base models) loads
through the CLI parser and runs one training + one validation step (see ``test_configs.py``)."""

from __future__ import annotations

import pytest

from tests.integration.test_configs import ALL_CONFIGS, CWGEN_FOLDERS, run_one_step

CWGEN_CONFIGS = [c for c in ALL_CONFIGS if c.startswith(CWGEN_FOLDERS)]


def test_the_two_files_cover_every_config():
    from tests.integration.test_configs import CONFIGS

    assert sorted(CONFIGS + CWGEN_CONFIGS) == ALL_CONFIGS and CWGEN_CONFIGS


@pytest.mark.slow
@pytest.mark.parametrize("config", CWGEN_CONFIGS)
def test_cwgen_config_runs_one_step(config, tmp_path, shared_cache_dir):
    run_one_step(config, tmp_path, shared_cache_dir)
