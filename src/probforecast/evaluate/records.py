"""Benchmark results as JSON lines: one record (a flat or nested JSON object) per line.

Appending one line per finished run makes a long benchmark resumable: a script reads the
file, skips the runs whose record is there (:meth:`JsonLines.has`) and appends the rest.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


class JsonLines:
    """A JSON-lines file of records.

    Args:
        path: the file; its folder is created on the first :meth:`append`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """Every record, in file order; ``[]`` when the file does not exist.

        Raises:
            ValueError: a line is not a JSON object (names the file and line number).
        """
        if not self.path.is_file():
            return []
        records = []
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.path}:{number} is not JSON: {err}") from err
            if not isinstance(record, dict):
                raise ValueError(
                    f"{self.path}:{number} holds a {type(record).__name__}, not an object"
                )
            records.append(record)
        return records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.read())

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line (flushed, so a crash later keeps it).

        Raises:
            ValueError: ``record`` holds a NaN or infinite number (JSON has none; a failed
                score must be reported, not written as an invalid token).
        """
        try:
            line = json.dumps(dict(record), allow_nan=False, default=_plain)
        except ValueError as err:
            raise ValueError(
                f"a record to {self.path} holds NaN or inf ({err}): {dict(record)}"
            ) from err
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()

    def has(self, **match: Any) -> bool:
        """Whether a record has every ``key: value`` of ``match`` (a missing key never matches)."""
        return any(all(k in r and r[k] == v for k, v in match.items()) for r in self.read())


def _plain(value: Any) -> Any:
    """JSON form of the numbers and paths that results carry (numpy/torch scalars, ``Path``)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    if callable(item):
        number = item()
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"cannot write the non-finite number {number} as JSON")
        return number
    raise TypeError(f"cannot write a {type(value).__name__} as JSON: {value!r}")
