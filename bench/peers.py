"""The engine's peers in bench/engine.py: EASE, implicit's ALS, BPR and item-kNN (cosine, BM25),
RP3beta and popularity, each with its untuned settings and a search space.

Every peer is tuned the same way (`tune`): optuna's TPE over its space on the validation split of
the training users (the split the engine chooses its own knobs on), its untuned settings first
among the trials, NDCG@10 with the benchmark's seen-item policy as the objective. The test users
never reach a tuner.

A peer fitted on a `Split` scores every held-out user at once (`lists`) and one user on demand
(`one`, for latency). ALS and BPR cannot fold in a user they never saw: they are trained on the
training users plus the held-out users' inputs (an advantage over the engine, which folds in).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import scipy.sparse as sp

from chalicelib.engine.evaluation import Split, evaluate
from chalicelib.engine.recipes import top_k
from chalicelib.engine.recipes.item_item import ease_weights

NDCG10 = "normalized_discounted_cumulative_gain_at_10"
EASE_ITEM_LIMIT = 20_000  # EASE's items² matrix: 10 GB at 50k items
CHUNK = 512  # held-out users scored per dense block


@dataclass
class Fitted:
    """A peer fitted on a split: top-k lists of all held-out users, or of one (latency)."""

    seconds: float
    lists: Callable[[int, bool], list[np.ndarray]]
    one: Callable[[int, int, bool], np.ndarray]


@dataclass(frozen=True)
class Peer:
    name: str
    untuned: dict[str, Any]
    space: Callable[[optuna.Trial], dict[str, Any]]
    fit: Callable[[Split, int, dict[str, Any]], Fitted]
    max_items: int | None = None


def held_matrix(parts: Split, n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(parts.inputs)), [len(h) for h in parts.inputs])
    cols = np.concatenate(parts.inputs) if parts.inputs else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(parts.inputs), n_items)
    )


def binary(parts: Split) -> sp.csr_matrix:
    x = parts.train.matrix()
    x.data[:] = 1.0
    return x


def _dense_lists(
    held: sp.csr_matrix, score: Callable[[sp.csr_matrix], np.ndarray]
) -> Callable[[int, bool], list[np.ndarray]]:
    """Top-k lists from a function scoring a block of held-out rows (dense rows × items)."""

    def lists(k: int, exclude: bool) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, held.shape[0], CHUNK):
            block = held[start : start + CHUNK]
            scores = np.asarray(score(block), dtype=np.float32)
            if exclude:
                rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
                scores[rows, block.indices] = -np.inf
            out.extend(top_k(s, k) for s in scores)
        return out

    return lists


def _item_model(
    parts: Split, n_items: int, weights: Any, dense: bool
) -> tuple[Callable[[int, bool], list[np.ndarray]], Callable[[int, int, bool], np.ndarray]]:
    held = held_matrix(parts, n_items)

    def score(block: sp.csr_matrix) -> np.ndarray:
        out = block @ weights
        return out if dense else out.toarray()

    def one(j: int, k: int, exclude: bool) -> np.ndarray:
        history = parts.inputs[j]
        scores = np.asarray(weights[history].sum(axis=0)).ravel().astype(np.float32)
        if exclude:
            scores[history] = -np.inf
        return top_k(scores, k)

    return _dense_lists(held, score), one


def fit_ease(parts: Split, n_items: int, p: dict[str, Any]) -> Fitted:
    started = time.perf_counter()
    b = ease_weights(binary(parts), float(p["lambda"]))
    seconds = time.perf_counter() - started
    return Fitted(seconds, *_item_model(parts, n_items, b, dense=True))


def rp3beta_weights(x: sp.csr_matrix, alpha: float, beta: float, k: int) -> sp.csr_matrix:
    """RP3beta (Paudel et al., 2017): item-to-item random-walk probabilities p(j | i) through
    users, each transition raised to α, divided by popularity(j)^β, top K per item."""
    user_deg = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    item_deg = np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1.0)
    p_ui = sp.diags(1.0 / user_deg) @ x
    p_iu = sp.diags(1.0 / item_deg) @ x.T.tocsr()
    p_ui.data **= alpha
    p_iu.data **= alpha
    w = (p_iu @ p_ui).tocsr()
    w = w @ sp.diags(1.0 / item_deg**beta)
    w.setdiag(0)
    w.eliminate_zeros()
    return _top_per_row(w.tocsr().astype(np.float32), k)


def _top_per_row(w: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for i in range(w.shape[0]):
        start, end = w.indptr[i], w.indptr[i + 1]
        if end - start > k:
            keep = start + np.argpartition(-w.data[start:end], k - 1)[:k]
        else:
            keep = np.arange(start, end)
        rows.append(np.full(len(keep), i))
        cols.append(w.indices[keep])
        vals.append(w.data[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=w.shape
    )


def fit_rp3beta(parts: Split, n_items: int, p: dict[str, Any]) -> Fitted:
    started = time.perf_counter()
    w = rp3beta_weights(binary(parts), float(p["alpha"]), float(p["beta"]), int(p["k"]))
    seconds = time.perf_counter() - started
    if n_items <= EASE_ITEM_LIMIT:
        w = w.toarray()
        return Fitted(seconds, *_item_model(parts, n_items, w, dense=True))
    return Fitted(seconds, *_item_model(parts, n_items, w.tocsr(), dense=False))


def _clean(ids: np.ndarray, parts: Split, exclude: bool) -> list[np.ndarray]:
    """implicit's lists without its padding (-1) and, with seen items excluded, without the
    seen items it returns anyway: where fewer than N unseen items score, implicit's item-kNN
    fills the list with the user's own items (46 of 300 validation users of retail-demo-store,
    whose held-out items are mostly repeats: NDCG@10 0.067 against 0.021 filtered)."""
    out = []
    for listed, history in zip(ids, parts.inputs, strict=True):
        kept = listed[listed >= 0]
        out.append(kept[~np.isin(kept, history)] if exclude else kept)
    return out


def _implicit_fit(make: Callable[[dict[str, Any]], Any]) -> Callable[..., Fitted]:
    def fit(parts: Split, n_items: int, p: dict[str, Any]) -> Fitted:
        x = binary(parts)
        held = held_matrix(parts, n_items)
        both = sp.vstack([x, held]).tocsr()
        offset = x.shape[0]
        model = make(p)
        started = time.perf_counter()
        model.fit(both, show_progress=False)
        seconds = time.perf_counter() - started
        users = np.arange(offset, offset + held.shape[0])

        def lists(k: int, exclude: bool) -> list[np.ndarray]:
            ids, _ = model.recommend(users, both[users], N=k, filter_already_liked_items=exclude)
            return _clean(ids, parts, exclude)

        def one(j: int, k: int, exclude: bool) -> np.ndarray:
            user = offset + j
            return model.recommend(user, both[user], N=k, filter_already_liked_items=exclude)[0]

        return Fitted(seconds, lists, one)

    return fit


def _knn_fit(make: Callable[[dict[str, Any]], Any]) -> Callable[..., Fitted]:
    def fit(parts: Split, n_items: int, p: dict[str, Any]) -> Fitted:
        x = binary(parts)
        held = held_matrix(parts, n_items)
        model = make(p)
        started = time.perf_counter()
        model.fit(x, show_progress=False)
        seconds = time.perf_counter() - started
        users = np.arange(held.shape[0])

        def lists(k: int, exclude: bool) -> list[np.ndarray]:
            ids, _ = model.recommend(users, held, N=k, filter_already_liked_items=exclude)
            return _clean(ids, parts, exclude)

        def one(j: int, k: int, exclude: bool) -> np.ndarray:
            return model.recommend(0, held[j], N=k, filter_already_liked_items=exclude)[0]

        return Fitted(seconds, lists, one)

    return fit


def fit_popularity(parts: Split, n_items: int, p: dict[str, Any]) -> Fitted:
    counts = np.asarray(binary(parts).sum(axis=0)).ravel().astype(np.float32)

    def one(j: int, k: int, exclude: bool) -> np.ndarray:
        scores = counts.copy()
        if exclude:
            scores[parts.inputs[j]] = -np.inf
        return top_k(scores, k)

    return Fitted(
        0.0, lambda k, exclude: [one(j, k, exclude) for j in range(len(parts.inputs))], one
    )


def _als(p: dict[str, Any]) -> Any:
    from implicit.als import AlternatingLeastSquares

    return AlternatingLeastSquares(
        factors=int(p["factors"]),
        regularization=float(p["regularization"]),
        alpha=float(p["alpha"]),
        iterations=15,
        random_state=0,
    )


def _bpr(p: dict[str, Any]) -> Any:
    from implicit.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(
        factors=int(p["factors"]),
        learning_rate=float(p["learning_rate"]),
        regularization=float(p["regularization"]),
        iterations=int(p["iterations"]),
        random_state=0,
    )


def _cosine(p: dict[str, Any]) -> Any:
    from implicit.nearest_neighbours import CosineRecommender

    return CosineRecommender(K=int(p["K"]))


def _bm25(p: dict[str, Any]) -> Any:
    from implicit.nearest_neighbours import BM25Recommender

    return BM25Recommender(K=int(p["K"]), K1=float(p["K1"]), B=float(p["B"]))


PEERS = (
    Peer(
        "EASE",
        {"lambda": 200.0},
        lambda t: {"lambda": t.suggest_float("lambda", 10.0, 50_000.0, log=True)},
        fit_ease,
        max_items=EASE_ITEM_LIMIT,
    ),
    Peer(
        "implicit ALS",
        {"factors": 100, "regularization": 0.01, "alpha": 1.0},
        lambda t: {
            "factors": t.suggest_int("factors", 32, 128, log=True),
            "regularization": t.suggest_float("regularization", 1e-3, 10.0, log=True),
            "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True),
        },
        _implicit_fit(_als),
    ),
    Peer(
        "implicit BPR",
        {"factors": 100, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
        lambda t: {
            "factors": t.suggest_int("factors", 32, 128, log=True),
            "learning_rate": t.suggest_float("learning_rate", 1e-3, 0.1, log=True),
            "regularization": t.suggest_float("regularization", 1e-4, 0.1, log=True),
            "iterations": t.suggest_int("iterations", 30, 150, log=True),
        },
        _implicit_fit(_bpr),
    ),
    Peer(
        "item-kNN cosine",
        {"K": 20},
        lambda t: {"K": t.suggest_int("K", 5, 1000, log=True)},
        _knn_fit(_cosine),
    ),
    Peer(
        "item-kNN BM25",
        {"K": 20, "K1": 1.2, "B": 0.75},
        lambda t: {
            "K": t.suggest_int("K", 5, 1000, log=True),
            "K1": t.suggest_float("K1", 0.1, 5.0, log=True),
            "B": t.suggest_float("B", 0.0, 1.0),
        },
        _knn_fit(_bm25),
    ),
    Peer(
        "RP3beta",
        {"alpha": 1.0, "beta": 0.5, "k": 100},
        lambda t: {
            "alpha": t.suggest_float("alpha", 0.1, 2.0),
            "beta": t.suggest_float("beta", 0.0, 1.0),
            "k": t.suggest_int("k", 10, 1000, log=True),
        },
        fit_rp3beta,
    ),
    Peer("popularity", {}, lambda t: {}, fit_popularity),
)


def metrics(fitted: Fitted, parts: Split, n_items: int, exclude: bool) -> dict[str, float]:
    lists = fitted.lists(25, exclude)
    position = {id(h): j for j, h in enumerate(parts.inputs)}
    return evaluate(lambda h, k: lists[position[id(h)]][:k], parts, n_items)


@dataclass(frozen=True)
class Tuned:
    params: dict[str, Any]
    validation_ndcg: float
    trials: int
    seconds: float


def tune(peer: Peer, validation: Split, n_items: int, exclude: bool, trials: int) -> Tuned:
    """The peer's best settings on the validation split: its untuned settings first, then TPE."""
    started = time.perf_counter()
    if not peer.untuned or trials <= 1:
        return Tuned(dict(peer.untuned), float("nan"), 0, 0.0)

    def objective(trial: optuna.Trial) -> float:
        fitted = peer.fit(validation, n_items, peer.space(trial))
        return metrics(fitted, validation, n_items, exclude)[NDCG10]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial(peer.untuned)
    study.optimize(objective, n_trials=trials)
    return Tuned(
        {**peer.untuned, **study.best_params},
        float(study.best_value),
        trials,
        time.perf_counter() - started,
    )
