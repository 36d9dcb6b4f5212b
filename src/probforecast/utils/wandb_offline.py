"""Read a W&B offline run (``run-<id>.wandb``) back without a server.

The file is W&B's LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then
32 KiB blocks of chunks, each chunk ``crc32 (4) | length (2, little endian) | type (1) | data``,
type 1 = FULL, 2 = FIRST, 3 = MIDDLE, 4 = LAST. A record is a serialised
``wandb_internal_pb2.Record`` protobuf. Used by the tests (and by users who want to check what an
offline run holds before ``wandb sync``).
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

_BLOCK = 32 * 1024
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def iter_records(path: str | Path) -> Iterator[bytes]:
    """Yield the raw protobuf bytes of every record in a ``.wandb`` file."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (missing ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def read_run(run_dir: str | Path, wait_for_exit_s: float = 0.0) -> dict[str, object]:
    """Summarise an offline run directory.

    W&B's writer is a separate process that may still be flushing when ``wandb.finish`` returns
    on a loaded machine; ``wait_for_exit_s > 0`` re-reads the file until it holds the run's
    ``exit`` record (the last one W&B writes) and raises ``TimeoutError`` if it never does.

    Returns:
        ``{"history": [ {key: value, ...}, ... ], "config": {...}, "summary": {...},
        "history_keys": set, "finished": bool}`` with values JSON-decoded; ``finished`` says
        whether the ``exit`` record was read.
    """
    deadline = time.monotonic() + wait_for_exit_s
    while not (run := _read_once(run_dir))["finished"]:
        if time.monotonic() >= deadline:
            if wait_for_exit_s > 0:
                raise TimeoutError(f"{run_dir} holds no exit record after {wait_for_exit_s} s")
            break
        time.sleep(0.5)
    return run


def _read_once(run_dir: str | Path) -> dict[str, object]:
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    history, config, summary, finished = [], {}, {}, False
    for raw in iter_records(files[0]):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        finished = finished or kind == "exit"
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "config":
            for item in record.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
    keys = {k for row in history for k in row}
    return {
        "history": history,
        "config": config,
        "summary": summary,
        "history_keys": keys,
        "finished": finished,
    }


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)
