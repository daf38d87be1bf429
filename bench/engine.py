"""The engine against tuned open-source peers on several datasets, same split, same run.

Personalize's protocol (chalicelib.engine.evaluation): 90% of users train; for the other 10%, the
oldest 90% of their events are the input and the newest 10% the truth. Every model, ours and the
peers (bench/peers.py), chooses its settings on the same validation split of the training users
(`chalicelib.engine.selection.validation_split`); the test users are never seen by a tuner. The
engine's row is `train` with its defaults: it chooses its own knobs on that split. Each peer is
shown untuned (library defaults) and tuned (optuna, `--trials` trials, its defaults among them).

Per dataset it prints NDCG@5/10/25, precision@10, MRR@25, coverage and fit seconds with seen items
excluded (the SPEC's figure), the ratio to the best tuned peer, the same with seen items allowed
(peers keep the settings tuned with seen items excluded), the top-25 latency of one request
(engine fold-in + ranking against implicit ALS's `recommend`, same catalogue, same run) and the
time of a whole solution version (`chalicelib.engine.training.train`). A summary table ends it.

    .venv/bin/python bench/engine.py                       # every dataset (~20 min, 2 cores)
    .venv/bin/python bench/engine.py --only shop [--only sparse] [--trials 10] [--hpo 12]
    .venv/bin/python bench/engine.py --list
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit is slower with OpenBLAS threads

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peers import NDCG10, PEERS, Fitted, metrics, tune  # noqa: E402
from synthetic import generate  # noqa: E402

from chalicelib.config import HpoConfig  # noqa: E402
from chalicelib.engine.data import Interactions  # noqa: E402
from chalicelib.engine.evaluation import Split, evaluate, split  # noqa: E402
from chalicelib.engine.selection import validation_split  # noqa: E402
from chalicelib.engine.training import train  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402

LATENCY_USERS = 300
OURS = "this engine (defaults)"


def load(folder: Path) -> Interactions:
    rows = []
    with gzip.open(folder / "interactions.csv.gz", "rt", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            value = float(r["EVENT_VALUE"]) if r.get("EVENT_VALUE") else None
            rows.append((r["USER_ID"], r["ITEM_ID"], r["EVENT_TYPE"], value, float(r["TIMESTAMP"])))
    return Interactions.from_rows(rows)


def _generated(items: int, interactions: int, shape: str) -> Callable[[], Interactions]:
    return lambda: Interactions.from_rows(generate(items, interactions, seed=0, shape=shape))


DATASETS: dict[str, tuple[str, Callable[[], Interactions]]] = {
    "shop": ("bundled shop (online-retail-ii)", lambda: load(ROOT / "data" / "online-retail-ii")),
    "retail-demo-store": (
        "retail-demo-store sample (5 event types)",
        lambda: load(ROOT / "data" / "retail-demo-store"),
    ),
    "generated-50k": (
        "generated 50k items, themes in time order",
        _generated(50_000, 400_000, "themes"),
    ),
    "unordered": (
        "generated 5k items, themes with no time order",
        _generated(5_000, 150_000, "unordered"),
    ),
    "sequences": ("generated 5k items, strong sequences", _generated(5_000, 150_000, "sequences")),
    "repeats": ("generated 3k items, heavy repeats", _generated(3_000, 150_000, "repeats")),
    "sparse": ("generated 5k items, very sparse users", _generated(5_000, 150_000, "sparse")),
}

COLUMNS = (
    ("NDCG@5", "normalized_discounted_cumulative_gain_at_5"),
    ("NDCG@10", NDCG10),
    ("NDCG@25", "normalized_discounted_cumulative_gain_at_25"),
    ("P@10", "precision_at_10"),
    ("MRR@25", "mean_reciprocal_rank_at_25"),
    ("cover", "coverage"),
)


def row(name: str, cells: list[str]) -> str:
    return f"| {name:44s} | " + " | ".join(f"{c:>7s}" for c in cells) + " |"


ROWS: list[dict[str, object]] = []  # the current dataset's rows, for the JSON results


def print_row(name: str, m: dict[str, float], seconds: float) -> None:
    print(row(name, [f"{m[key]:.4f}" for _, key in COLUMNS] + [f"{seconds:.1f}"]), flush=True)
    ROWS.append({"model": name, "metrics": dict(m), "fit_seconds": round(seconds, 3)})


def latency_ms(one: Callable[[int], object], n_users: int) -> float:
    """Median ms of one user's top-25, over the same sample of held-out users for every model."""
    rng = np.random.default_rng(1)
    sample = rng.choice(n_users, size=min(LATENCY_USERS, n_users), replace=False).tolist()
    for j in sample[:20]:
        one(j)  # warm up
    times = []
    for j in sample:
        started = time.perf_counter()
        one(j)
        times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times))


def _short(values: dict[str, object]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


class Engine:
    """The engine as `train` builds it: knobs chosen on the validation split, then fitted."""

    def __init__(self, parts: Split, n_items: int, exclude: bool, hyper: dict[str, object]) -> None:
        from chalicelib.engine.training import choose_and_fit

        started = time.perf_counter()
        self.model, self.selection = choose_and_fit(
            "user-personalization", {"exclude_seen": exclude, **hyper}, parts.train
        )
        self.seconds = time.perf_counter() - started
        self.parts = parts

    def metrics(self, n_items: int) -> dict[str, float]:
        return evaluate(self.model.recommend_indices, self.parts, n_items)

    def one(self, j: int) -> np.ndarray:
        return self.model.recommend_indices(self.parts.inputs[j], 25)


def hpo_config(trials: int) -> dict[str, object]:
    """Ranges as a solution's hpo_config would give them."""
    return HpoConfig.model_validate(
        {
            "hpo_resource_config": {"max_number_of_training_jobs": trials},
            "algorithm_hyperparameter_ranges": {
                "continuous_hyperparameter_ranges": [
                    {"name": "recency_half_life", "min_value": 1.0, "max_value": 12.0},
                    {"name": "ease_blend", "min_value": 0.0, "max_value": 1.0},
                ]
            },
        }
    ).model_dump()


def seen_allowed(parts: Split, n: int, tuned: dict[str, tuple[dict[str, object], Fitted]]) -> float:
    """The engine with repeats allowed (it chooses its knobs for that policy) against the peers
    with the settings tuned with seen items excluded."""
    allowed = Engine(parts, n, False, {})
    ndcg = {OURS: allowed.metrics(n)[NDCG10]}
    for name, (_, fitted) in tuned.items():
        ndcg[name] = metrics(fitted, parts, n, False)[NDCG10]
    best = max((k for k in ndcg if k != OURS), key=ndcg.__getitem__)
    print(
        f"seen items allowed: NDCG@10 {ndcg[OURS]:.4f} (chose {_short(allowed.selection.chosen)}); "
        f"best peer {best} {ndcg[best]:.4f}: {ndcg[OURS] / ndcg[best]:.2f}x"
    )
    return ndcg[OURS] / ndcg[best]


def top25(ours: Engine, als: Fitted, n_users: int) -> float:
    ours_ms = latency_ms(ours.one, n_users)
    als_ms = latency_ms(lambda j: als.one(j, 25, True), n_users)
    print(
        f"top-25 of one user, p50: engine {ours_ms:.3f} ms, tuned implicit ALS {als_ms:.3f} ms "
        f"({als_ms / ours_ms:.2f}x; ≥ 1 means the engine is faster)"
    )
    return als_ms / ours_ms


def solution_version(data: Interactions) -> float:
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    version = train("user-personalization", {}, data)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"solution version (split, knob choice, evaluation, final fit) on {len(data):,} "
        f"interactions: {seconds:.1f} s, {cpu:.1f} CPU-seconds (load {load:.1f}); its NDCG@10 "
        f"{version.metrics[NDCG10]:.4f}"
    )
    return seconds


def run(key: str, trials: int, hpo: int) -> dict[str, object]:
    title, make = DATASETS[key]
    data = make()
    parts = split(data, seed=42)
    validation = validation_split(parts.train)
    n = data.n_items
    print(
        f"\n## {key}: {title}; {len(data):,} interactions, {data.n_users:,} users, {n:,} items; "
        f"{len(parts.inputs)} test users, {len(validation.inputs)} validation users "
        f"(load {os.getloadavg()[0]:.1f})\n"
    )
    ROWS.clear()
    header = [c for c, _ in COLUMNS] + ["fit s"]
    print(row("seen items excluded", header))
    print(row("-" * 44, ["-" * 7] * len(header)))
    ours = Engine(parts, n, True, {})
    ndcg: dict[str, float] = {}
    m = ours.metrics(n)
    ndcg[OURS] = m[NDCG10]
    print_row(OURS, m, ours.seconds)
    fixed = Engine(parts, n, True, {"auto_tune": False})
    print_row("this engine, fixed defaults (auto_tune=false)", fixed.metrics(n), fixed.seconds)
    if hpo:
        started = time.perf_counter()
        result = train("user-personalization", {}, data, hpo=hpo_config(hpo))
        print_row(
            f"this engine, performHPO {hpo} trials", result.metrics, time.perf_counter() - started
        )
    tuned: dict[str, tuple[dict[str, object], Fitted]] = {}
    untuned: dict[str, float] = {}
    for peer in PEERS:
        if peer.max_items is not None and n > peer.max_items:
            continue
        plain = peer.fit(parts, n, peer.untuned)
        if peer.untuned:
            m = metrics(plain, parts, n, True)
            untuned[peer.name] = m[NDCG10]
            print_row(f"{peer.name} untuned", m, plain.seconds)
        best = tune(peer, validation, n, True, trials)
        fitted = peer.fit(parts, n, best.params) if best.trials else plain
        m = metrics(fitted, parts, n, True)
        name = f"{peer.name} tuned" if best.trials else peer.name
        ndcg[name] = m[NDCG10]
        tuned[peer.name] = (best.params, fitted)
        print_row(name, m, fitted.seconds)
    peers_only = {k: v for k, v in ndcg.items() if k != OURS}
    best_peer = max(peers_only, key=peers_only.__getitem__)
    ratio = ndcg[OURS] / peers_only[best_peer]
    print(f"\nchosen by the engine on validation users: {_short(ours.selection.chosen)}")
    for name, (params, _) in tuned.items():
        if params:
            print(f"tuned {name}: {_short(params)}")
    print(f"NDCG@10 against the best tuned peer ({best_peer}): {ratio:.2f}x (target ≥ 1.10x)")
    any_best = max(max(untuned.values(), default=0.0), peers_only[best_peer])
    print(f"against the best peer row, tuned or untuned: {ndcg[OURS] / any_best:.2f}x")

    allowed_ratio = seen_allowed(parts, n, tuned)
    latency = top25(ours, tuned["implicit ALS"][1], len(parts.inputs))
    seconds = solution_version(data)
    return {
        "dataset": key,
        "title": title,
        "users": data.n_users,
        "items": n,
        "test_users": len(parts.inputs),
        "rows": list(ROWS),
        "ours": ndcg[OURS],
        "best": best_peer,
        "peer": peers_only[best_peer],
        "ratio": ratio,
        "any": ndcg[OURS] / any_best,
        "allowed": allowed_ratio,
        "train": seconds,
        "latency": latency,
        "interactions": len(data),
    }


def summary(results: list[dict[str, object]]) -> None:
    print("\n## summary (NDCG@10, seen items excluded; ratio to the best tuned peer)\n")
    print(
        "| dataset | engine | best tuned peer | peer | ratio | vs any peer row | seen allowed "
        "| train s | top-25 vs ALS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['dataset']} | {r['ours']:.4f} | {r['best']} | {r['peer']:.4f} | "
            f"{r['ratio']:.2f}x | {r['any']:.2f}x | {r['allowed']:.2f}x | {r['train']:.1f} | "
            f"{r['latency']:.2f}x |"
        )


def write_results(path: Path, results: list[dict[str, object]], trials: int) -> None:
    """The figures of this run as JSON, for the report's peers section (seen items excluded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "bench/engine.py " + " ".join(sys.argv[1:]),
        "trials": trials,
        "load": round(os.getloadavg()[0], 2),
        "datasets": results,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"results written to {path}")


def main() -> int:
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=sorted(DATASETS))
    parser.add_argument("--trials", type=int, default=8, help="tuning trials per peer")
    parser.add_argument("--hpo", type=int, default=0, help="also train with performHPO")
    parser.add_argument("--list", action="store_true")
    parser.add_argument(
        "--json",
        type=Path,
        default=Settings().data_dir / "bench-engine.json",
        help="where to write the results (read by `python -m chalicelib report`)",
    )
    args = parser.parse_args()
    if args.list:
        for key, (title, _) in DATASETS.items():
            print(f"{key:18s} {title}")
        return 0
    print(f"{os.cpu_count()} cores; numpy {np.__version__}; load {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    results = [run(key, args.trials, args.hpo) for key in args.only or DATASETS]
    summary(results)
    print(f"\n{time.perf_counter() - started:.0f} s in all (load {os.getloadavg()[0]:.1f})")
    write_results(args.json, results, args.trials)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
