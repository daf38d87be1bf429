"""Serving benchmark: `GET /recommendations` through the Chalice handler, in process, on the
bundled 4k-item sample shop (or a generated catalogue); and the engine's top-25 (fold-in +
ranking) against `implicit`'s
ALS `recommend` for the same users on the same catalogue, measured in the same run.

    .venv/bin/python bench/serving.py [--requests 3000] [--data-dir DIR] [--items 50000]

Each handler series runs unfiltered and with two filters (SPEC §7's figures hold for filtered
requests too): `exclude-purchased`, and a placeholder filter on price plus purchases.

`--items N` serves a generated catalogue of N items (400k interactions, bench/synthetic.py).
SPEC §7 targets: handler p99 ≤ 5 ms (4k items), ≤ 10 ms (50k items); engine top-25 no slower than
implicit's recommend.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

# implicit warns (and slows down) when OpenBLAS runs its own thread pool; set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from chalicelib.providers.local.served import ServedVersion


def percentiles(samples_ms: list[float]) -> str:
    q = np.percentile(samples_ms, [50, 99])
    return f"p50 {q[0]:.3f} ms  p99 {q[1]:.3f} ms  mean {statistics.fmean(samples_ms):.3f} ms"


def prepare(data_dir: Path, items: int | None) -> None:
    """The bundled shop, or with `items` a generated catalogue of that size, imported through
    the CLI's code path and trained with every configured solution."""
    os.environ["RECS_DATA_DIR"] = str(data_dir)
    from chalicelib import cli
    from chalicelib.seam import runtime

    runtime.reset()
    if (data_dir / "store.sqlite3").exists():
        return
    if items is None:
        cli.bootstrap("online-retail-ii")  # the README's serving figures: the 4k-item shop
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import generate, write

    folder = data_dir / "generated"
    write(folder, generate(items, 400_000), items)
    workflow = runtime.current().workflow
    for dataset in ("items", "users", "interactions"):
        report = workflow.import_file(dataset, str(folder / f"{dataset}.csv.gz"), "full", None)
        assert report.status == "imported", report
    for info in workflow.train(None, None):
        print(f"  {info.version_id}: trained in {info.training_seconds:.1f} s")


# Benchmarked filters: the shipped one, and one reading item metadata, a placeholder and events.
BENCH_FILTERS = {
    "exclude-purchased": "",
    "cheap-unbought": "&MAX=5",
}
CHEAP_UNBOUGHT = (
    "INCLUDE ItemID WHERE Items.PRICE <= $MAX | "
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
)


def bench_config(folder: Path) -> None:
    """The project's configuration plus the `cheap-unbought` filter, selected with RECS_CONFIG."""
    base = (ROOT / "chalicelib" / "recs.toml").read_text()
    path = folder / "bench-recs.toml"
    path.write_text(base.rstrip() + f"\ncheap-unbought = '{CHEAP_UNBOUGHT}'\n")
    os.environ["RECS_CONFIG"] = str(path)


def bench_handler(users: list[str], requests: int, query: str = "") -> list[float]:
    from chalice.test import Client

    from app import app

    timings = []
    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        headers = {"x-api-key": "dev-local-key"}
        for warm in users[:50]:
            client.http.get(f"/recommendations?user_id={warm}", headers=headers)
        for n in range(requests):
            path = f"/recommendations?user_id={users[n % len(users)]}{query}"
            start = time.perf_counter()
            response = client.http.get(path, headers=headers)
            timings.append((time.perf_counter() - start) * 1e3)
            assert response.status_code == 200
    return timings


def served_recommendations() -> ServedVersion:
    """The version the recommendations campaign serves (the local provider's public state)."""
    from chalicelib.providers.local.serving import LocalServing
    from chalicelib.seam import runtime

    serving = runtime.current().serving
    assert isinstance(serving, LocalServing)
    return serving.state.current().campaigns["recommendations"]


def bench_engine_vs_implicit(users: list[str], requests: int) -> tuple[list[float], list[float]]:
    from implicit.als import AlternatingLeastSquares

    served = served_recommendations()
    model = served.model
    import scipy.sparse as sp

    n_users, n_items = len(model.user_ids), len(model.item_ids)
    rows = np.repeat(np.arange(n_users), np.diff(model.hist_indptr))
    user_items = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, model.hist_indices)), shape=(n_users, n_items)
    )
    als = AlternatingLeastSquares(factors=64, iterations=15, random_state=0)
    als.fit(user_items, show_progress=False)

    ours, theirs = [], []
    for n in range(requests):
        user = users[n % len(users)]
        row = model.user_index[user]
        start = time.perf_counter()
        history = model.history(user, [])
        model.recommend(history, 25, served.allowed)
        ours.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        als.recommend(row, user_items[row], N=25, filter_already_liked_items=True)
        theirs.append((time.perf_counter() - start) * 1e3)
    return ours, theirs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--items", type=int, help="a generated catalogue of this many items")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        bench_config(Path(tmp))
        started = time.perf_counter()
        prepare(data_dir, args.items)
        print(f"shop imported and trained in {time.perf_counter() - started:.1f} s")

        model = served_recommendations().model
        rng = np.random.default_rng(0)
        users = rng.choice(model.user_ids, size=min(500, len(model.user_ids)), replace=False)
        users = users.tolist()
        print(f"catalogue: {len(model.item_ids):,} items, {len(model.user_ids):,} users")

        handler = bench_handler(users, args.requests)
        print(f"GET /recommendations (Chalice handler, in process): {percentiles(handler)}")
        for name, values in BENCH_FILTERS.items():
            filtered = bench_handler(users, args.requests, f"&filter={name}{values}")
            label = f"  with filter={name}{values}:"
            print(f"{label:52s}{percentiles(filtered)}")
        ours, theirs = bench_engine_vs_implicit(users, args.requests)
        print(f"engine top-25 (fold-in + rank):                    {percentiles(ours)}")
        print(f"implicit ALS recommend top-25 (peer):              {percentiles(theirs)}")
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(f"engine vs implicit, median speed ratio: {ratio:.2f}x (>1 means faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
