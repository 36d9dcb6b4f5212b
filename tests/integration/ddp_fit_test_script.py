"""Run by ``test_ddp_fit.py`` (under DDP, Lightning re-runs this file once per extra rank):
``fit`` then ``test`` of the last checkpoint in one process group; rank 0 writes the test
metrics and the checkpoint path as JSON to ``argv[1]``. The other arguments go to the CLI."""

from __future__ import annotations

import json
import sys
import warnings

from probforecast.cli import ProbForecastCLI


def main() -> None:
    warnings.simplefilter("ignore")
    out, args = sys.argv[1], sys.argv[2:]
    cli = ProbForecastCLI(args=args, run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    last = cli.trainer.checkpoint_callback.last_model_path
    cli.trainer.test(cli.model, cli.datamodule, ckpt_path=last, verbose=False)
    if cli.trainer.is_global_zero:
        metrics = {
            k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")
        }
        info = {"last": last, "world_size": cli.trainer.world_size, "metrics": metrics}
        with open(out, "w") as fh:
            json.dump(info, fh)


if __name__ == "__main__":
    main()
