"""Import benchmark: CSV validation throughput (rows/s) of `chalicelib.csvdata` on a generated
interactions file, plain and gzipped, against a peer validating each row with a pydantic model,
same file, same run; and the peak Python heap while validating 100k and 1M rows (flat memory).

    .venv/bin/python bench/imports.py [--rows 1000000]

Rates are rows per CPU-second of this process (time.process_time), so that other jobs on the
machine do not count. SPEC §7 target: at least 200,000 rows/s with memory flat in the file's size.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.csvdata import Validation, open_text, read_rows  # noqa: E402

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Row(BaseModel):
    """The peer: what a per-row pydantic check of the same rules looks like."""

    USER_ID: Id
    ITEM_ID: Id
    EVENT_TYPE: Id
    EVENT_VALUE: float | None
    TIMESTAMP: Annotated[int, Field(ge=0, le=4_102_444_800)]


def generate(path: Path, rows: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:  # type: ignore[operator]
        out = csv.writer(fh)
        out.writerow(["USER_ID", "ITEM_ID", "EVENT_TYPE", "EVENT_VALUE", "TIMESTAMP"])
        for n in range(rows):
            out.writerow(
                [
                    rng.randrange(50_000),
                    f"SKU-{rng.randrange(20_000)}",
                    rng.choice(("view", "cart", "purchase")),
                    f"{rng.random() * 50:.2f}" if n % 3 else "",
                    1_600_000_000 + n,
                ]
            )


def ours(path: Path) -> tuple[int, float]:
    validation = Validation()
    start = time.process_time()
    for _ in read_rows(path, "interactions", validation):
        pass
    assert validation.error_count == 0, validation.errors
    return validation.rows, time.process_time() - start


def peer(path: Path) -> tuple[int, float]:
    start = time.process_time()
    count = 0
    with open_text(path) as text:
        for record in csv.DictReader(text):
            record["EVENT_VALUE"] = record["EVENT_VALUE"] or None  # type: ignore[assignment]
            Row.model_validate(record)
            count += 1
    return count, time.process_time() - start


def peak_heap(path: Path) -> int:
    tracemalloc.start()
    ours(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, gz = Path(tmp) / "big.csv", Path(tmp) / "big.csv.gz"
        small = Path(tmp) / "small.csv"
        generate(plain, args.rows)
        generate(gz, args.rows)
        generate(small, args.rows // 10)
        print(f"{args.rows:,} interaction rows ({plain.stat().st_size / 2**20:.0f} MiB plain)")
        for label, path in (("plain", plain), ("gzip", gz)):
            rows, ours_s = ours(path)
            _, peer_s = peer(path)
            print(
                f"{label:5s}  csvdata {rows / ours_s:10,.0f} rows/s   "
                f"pydantic per row {rows / peer_s:10,.0f} rows/s   ratio {peer_s / ours_s:.1f}x"
            )
        small_peak, big_peak = peak_heap(small), peak_heap(plain)
        print(
            f"peak heap: {small_peak / 2**20:.2f} MiB for {args.rows // 10:,} rows, "
            f"{big_peak / 2**20:.2f} MiB for {args.rows:,} rows"
        )


if __name__ == "__main__":
    main()
