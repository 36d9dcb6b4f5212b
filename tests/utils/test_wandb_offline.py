"""The offline-run reader against files written chunk by chunk in W&B's LevelDB-style layout."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from probforecast.utils.wandb_offline import iter_records, read_run

pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")

BLOCK = 32 * 1024


def write_log(path: Path, records: list[bytes]) -> None:
    """Write ``records`` as W&B does: 7-byte header, 32 KiB blocks, records split into chunks."""
    out = bytearray(b":W&B" + struct.pack("<HB", 0xBEE1, 0))
    for data in records:
        first = True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += b"\0" * left
                continue
            take = min(len(data), left - 7)
            last = take == len(data)
            kind = (1 if last else 2) if first else (4 if last else 3)
            chunk = data[:take]
            out += struct.pack("<IHB", zlib.crc32(chunk), len(chunk), kind) + chunk
            data, first = data[take:], False
            if last:
                break
    path.write_bytes(bytes(out))


def history(step: int, **values: float) -> bytes:
    record = pb.Record()
    for key, value in {"_step": step, **values}.items():
        item = record.history.item.add()
        item.key, item.value_json = key, str(value)
    return record.SerializeToString()


def exit_record() -> bytes:
    record = pb.Record()
    record.exit.exit_code = 0
    return record.SerializeToString()


def test_records_split_across_blocks_are_rejoined(tmp_path):
    big = history(0, **{f"metric_{i:05d}": float(i) for i in range(3000)})
    assert len(big) > BLOCK
    write_log(tmp_path / "run-x.wandb", [history(0, a=1.0), big, exit_record()])
    raws = list(iter_records(tmp_path / "run-x.wandb"))
    assert raws[1] == big and len(raws) == 3
    run = read_run(tmp_path)
    assert run["finished"] and run["history"][1]["metric_02999"] == 2999.0
    assert {"a", "_step", "metric_00000"} <= run["history_keys"]


def test_an_unfinished_run_is_reported_and_waiting_for_it_times_out(tmp_path):
    write_log(tmp_path / "run-x.wandb", [history(0, a=1.0), history(1, a=2.0)])
    run = read_run(tmp_path)
    assert not run["finished"] and [row["a"] for row in run["history"]] == [1.0, 2.0]
    with pytest.raises(TimeoutError, match="no exit record"):
        read_run(tmp_path, wait_for_exit_s=0.6)


def test_not_a_run_file_is_one_clear_error(tmp_path):
    (tmp_path / "run-x.wandb").write_bytes(b"not wandb")
    with pytest.raises(ValueError, match="not a W&B run file"):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run-"):
        read_run(tmp_path / "empty")
