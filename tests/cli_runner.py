"""Run ``probforecast <args>`` for a test: in this process by default, or as a subprocess.

A subprocess pays ~15 s of imports (torch, lightning, gluonts, wandb) per call; in-process the
test worker has paid them once. In-process runs call the real console entry point
(``probforecast.cli.main``) with the same arguments and give the same exit code, stdout and
stderr (logging included); the environment, working directory, warning filters, denormal
flushing and the W&B run are restored or finished afterwards. Tests whose point is the process
itself (the ``python -m probforecast`` entry point, a SIGKILL) use ``in_process=False``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class CliResult:
    """What a finished ``probforecast`` command left: its exit code and its output."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, cwd: Path, env_extra: dict | None = None, in_process: bool = True
) -> CliResult:
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env_extra or {})}
    if not in_process:
        done = subprocess.run(
            [sys.executable, "-m", "probforecast", *args],
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)
    return _run_in_process(list(args), cwd, env)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _run_in_process(args: list[str], cwd: Path, env: dict) -> CliResult:
    from probforecast.cli import main

    saved_env, saved_cwd, saved_threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved_level = root.level
    os.environ.update(env)
    os.chdir(cwd)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    code = 0
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                main(args)
            except SystemExit as exit_:
                code = _exit_code(exit_.code)
            except Exception:  # noqa: BLE001 (an uncaught error is a failed command, as in a process)
                traceback.print_exc()
                code = 1
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        _finish_wandb()
        torch.set_flush_denormal(False)
        torch.set_num_threads(saved_threads)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return CliResult(code, out.getvalue(), err.getvalue())


def _finish_wandb() -> None:
    """A process ends its W&B run on exit; in-process, the next command would otherwise reuse it."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nSTDOUT\n{result.stdout[-3000:]}\nSTDERR\n{result.stderr[-5000:]}"
    )
    return result
