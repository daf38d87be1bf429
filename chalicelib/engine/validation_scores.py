"""Validation users' scores under many candidate knob settings, cheaply: the score matrix of each
fitted component (EASE, neighbours, factors) per recency half-life is computed once, and a
candidate's scores are a recombination of them (`blend`), exactly as
`UserPersonalization.scores` combines them for one user at serving time.

On a large catalogue each user's matrices are kept only on a pool of items (every component's
best few hundred for that user, their history and the new items): a candidate's top 10 comes from
there, and a recombination costs pool-sized rather than catalogue-sized arrays (at 50k items, 0.9
s per candidate on whole rows). Below `FULL_ITEMS` the rows are whole and `blend` is exact
(tests/unit/test_engine_selection.py holds it to the recipe's scores).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from chalicelib.engine.evaluation import Split
from chalicelib.engine.recipes.implicit_als import fold_in
from chalicelib.engine.recipes.item_item import neighbour_scores
from chalicelib.engine.recipes.user_personalization import (
    SPARSE_RANK,
    UserPersonalization,
    UserPersonalizationParams,
    recency_weights,
)

FULL_ITEMS = 8_000  # up to this many items, rows are whole (exact)
POOL_PER_COMPONENT = 150
POOL_HISTORY = 50
POOL_NEW_ITEMS = 100
CACHED = 24  # component matrices kept (least recently used dropped)


@dataclass
class Components:
    """What a candidate's scores are made of, fitted once on the validation split's users."""

    dense: bool
    ease: dict[float, np.ndarray]  # λ key → EASE weights
    nbr: tuple[np.ndarray, np.ndarray] | None  # (indices, scores), rows sorted best first
    factors: tuple[np.ndarray, np.ndarray] | None  # (item vectors, input scale)
    recipe: UserPersonalization  # explore, new items and repeat rates of the fit data
    als: tuple[np.ndarray, np.ndarray] | None = None  # (ALS item factors, their Gram YᵀY)

    @classmethod
    def of(cls, recipe: UserPersonalization, lambda_scale: float = 1.0) -> Components:
        """The components of a fitted recipe (its EASE weights filed under `lambda_scale`)."""
        nbr = None
        if recipe.nbr_idx is not None and recipe.nbr_score is not None:
            nbr = (recipe.nbr_idx, recipe.nbr_score)
        factors = None if recipe.factors is None else (recipe.factors, recipe.factor_scale)
        als = None
        if recipe.factors is not None and recipe.factor_gram is not None:
            factors, als = None, (recipe.factors, recipe.factor_gram)
        ease = {} if recipe.weights is None else {lambda_scale: recipe.weights}
        dense = recipe.n_items <= recipe.params.dense_item_limit
        return cls(dense, ease, nbr, factors, recipe, als)


class Part(NamedTuple):
    values: np.ndarray  # users × pool (or × items)
    top: np.ndarray  # users × 1: the best score of the whole row, at least 1e-12


class ValidationScores:
    """Validation users' component matrices per half-life, computed on first use."""

    def __init__(
        self, fitted: Components, parts: Split, params: UserPersonalizationParams, n_items: int
    ) -> None:
        self.fitted, self.inputs, self.params, self.n_items = fitted, parts.inputs, params, n_items
        self.truths = parts.truths
        self._cache: dict[tuple[Any, ...], Part] = {}
        self._lock = threading.Lock()
        self._weights: dict[float | None, sp.csr_matrix] = {}
        self.pool: np.ndarray | None = None  # users × pool item indices; None: whole rows
        self._set_masks(None)
        k = min(10, n_items)
        self.discount = 1.0 / np.log2(np.arange(2, k + 2))
        lengths = np.minimum([len(t) for t in self.truths], k)
        self.ideal = np.cumsum(self.discount)[lengths - 1]

    def _set_masks(self, valid: np.ndarray | None) -> None:
        """Truth, seen items, exploration and repeat rates laid out as the rows are (whole or
        pooled); `valid` marks the pool's real entries (rows are padded to one width)."""
        truth = np.zeros((len(self.inputs), self.n_items), dtype=bool)
        for u, items in enumerate(self.truths):
            truth[u, list(items)] = True
        seen = np.zeros_like(truth)
        rows = np.repeat(np.arange(len(self.inputs)), [len(h) for h in self.inputs])
        seen[rows, np.concatenate(self.inputs) if self.inputs else rows] = True
        self.truth, self.seen = truth, seen
        self.invalid = None if valid is None else ~valid
        self.explore = self.fitted.recipe.explore[None, :]
        self.repeat_rate = self.fitted.recipe.repeat_rate[None, :]
        if self.pool is not None:
            self.truth = np.take_along_axis(truth, self.pool, axis=1)
            self.seen = np.take_along_axis(seen, self.pool, axis=1)
            self.explore = self.fitted.recipe.explore[self.pool]
            self.repeat_rate = self.fitted.recipe.repeat_rate[self.pool]

    def use_pool(self, cfg: Mapping[str, Any]) -> None:
        """Keep each user's rows on a pool of items, when the catalogue is large: the best
        POOL_PER_COMPONENT items of every component at `cfg`'s half-life and with no recency,
        the user's last POOL_HISTORY items and (up to POOL_NEW_ITEMS) the new items."""
        if self.n_items <= FULL_ITEMS:
            return
        take = min(POOL_PER_COMPONENT, self.n_items)
        found: list[list[np.ndarray]] = [[] for _ in self.inputs]
        for h in {cfg["recency_half_life"], None}:
            for make in self._makers(cfg, h, dense_only=True):
                for u, best in enumerate(top_columns(make(), take)):
                    found[u].append(best)
            if self.fitted.nbr is not None:  # sparse rows: the best of each row's non-zeros
                k = self.fitted.nbr[0].shape[1]
                for u, row in enumerate(self._nbr_rows(k, h)):
                    nonzero = np.flatnonzero(row)
                    if len(nonzero) > take:
                        nonzero = nonzero[np.argpartition(-row[nonzero], take - 1)[:take]]
                    found[u].append(nonzero)
        new = self.fitted.recipe.new_items[:POOL_NEW_ITEMS]
        pools = [
            np.unique(np.concatenate([*found[u], history[-POOL_HISTORY:], new]).astype(np.int64))
            for u, history in enumerate(self.inputs)
        ]
        width = max(len(p) for p in pools)
        pool = np.zeros((len(pools), width), dtype=np.int64)
        valid = np.zeros((len(pools), width), dtype=bool)
        for u, p in enumerate(pools):
            pool[u, : len(p)], pool[u, len(p) :], valid[u, : len(p)] = p, p[0], True
        self.pool = pool
        self._cache.clear()
        self._set_masks(valid)

    def _makers(
        self, cfg: Mapping[str, Any], h: float | None, dense_only: bool = False
    ) -> list[Callable[[], np.ndarray]]:
        fitted, makers = self.fitted, []
        if fitted.ease:
            makers.append(self._ease_maker(cfg["lambda_scale"], h))
        if fitted.nbr is not None and not dense_only:
            makers.append(self._nbr_maker(fitted.nbr[0].shape[1], h))
        if fitted.factors is not None:
            makers.append(self._factor_maker(fitted.factors[0].shape[1], h))
        if fitted.als is not None:
            makers.append(lambda: self._als_users(h) @ self._als_vectors().T)
        return makers

    def _get(
        self, key: tuple[Any, ...], make: Callable[[], np.ndarray], pooled: Callable[[], np.ndarray]
    ) -> Part:
        """A cached part, least recently used dropped past CACHED (memory stays bounded). With a
        pool, only the pool's entries are computed, and a row's best score is its pool's."""
        with self._lock:  # candidates are scored on two threads
            if key in self._cache:
                self._cache[key] = self._cache.pop(key)
                return self._cache[key]
        values = make() if self.pool is None else pooled()
        masked = values if self.invalid is None else np.where(self.invalid, -np.inf, values)
        part = Part(values, np.maximum(masked.max(axis=1), 1e-12)[:, None])
        with self._lock:
            self._cache[key] = part
            while len(self._cache) > CACHED:
                self._cache.pop(next(iter(self._cache)))
        return part

    def weights(self, half_life: float | None) -> sp.csr_matrix:
        """Users × items recency weights of each user's history, cut to the recipe's depth."""
        if half_life not in self._weights:
            update = {"recency_half_life": half_life}
            depth = UserPersonalization(self.params.model_copy(update=update)).depth
            rows, cols, vals = [], [], []
            for u, full in enumerate(self.inputs):
                history = full[-depth:]
                rows.append(np.full(len(history), u))
                cols.append(history)
                vals.append(recency_weights(len(history), half_life))
            self._weights[half_life] = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(len(self.inputs), self.n_items),
                dtype=np.float32,
            )
        return self._weights[half_life]

    def pooled_weights(self, half_life: float | None) -> np.ndarray:
        w = self.weights(half_life)
        if self.pool is None:
            return w.toarray()
        out = np.zeros(self.pool.shape, dtype=np.float32)
        for u in range(len(self.inputs)):
            start, end = w.indptr[u], w.indptr[u + 1]
            row = dict(zip(w.indices[start:end].tolist(), w.data[start:end].tolist(), strict=True))
            out[u] = [row.get(i, 0.0) for i in self.pool[u].tolist()]
        return out

    def _ease_maker(self, scale: float, h: float | None) -> Callable[[], np.ndarray]:
        weights = self.fitted.ease[scale]
        return lambda: np.asarray(self.weights(h) @ weights)

    def _nbr_maker(self, k: int, h: float | None) -> Callable[[], np.ndarray]:
        assert self.fitted.nbr is not None
        idx, score = self.fitted.nbr[0][:, :k], self.fitted.nbr[1][:, :k]

        def make() -> np.ndarray:
            rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
            valid = idx.ravel() >= 0
            matrix = sp.csr_matrix(
                (score.ravel()[valid], (rows[valid], idx.ravel()[valid])),
                shape=(self.n_items, self.n_items),
            )
            scores: np.ndarray = (self.weights(h) @ matrix).toarray()
            return scores

        return make

    def _nbr_rows(self, k: int, h: float | None) -> Iterator[np.ndarray]:
        """Each user's neighbour scores over the catalogue, one row at a time (a row is as
        sparse as the neighbours of a few items: one dense block of them would be the
        catalogue's size per user)."""
        assert self.fitted.nbr is not None
        idx, score = self.fitted.nbr[0][:, :k], self.fitted.nbr[1][:, :k]
        w = self.weights(h)
        for u in range(len(self.inputs)):
            start, end = w.indptr[u], w.indptr[u + 1]
            yield neighbour_scores(
                w.indices[start:end], idx, score, self.n_items, w.data[start:end]
            )

    def _factor_maker(self, rank: int, h: float | None) -> Callable[[], np.ndarray]:
        assert self.fitted.factors is not None
        vectors, scale = self.fitted.factors[0][:, :rank], self.fitted.factors[1]

        def make() -> np.ndarray:
            users = (self.weights(h) @ sp.diags(scale)) @ vectors
            return np.asarray(users @ vectors.T, dtype=np.float32)

        return make

    def ease(self, scale: float, h: float | None) -> Part:
        weights = self.fitted.ease[scale]

        def pooled() -> np.ndarray:
            assert self.pool is not None
            w = self.weights(h)
            out = np.zeros(self.pool.shape, dtype=np.float32)
            for u in range(len(self.inputs)):
                start, end = w.indptr[u], w.indptr[u + 1]
                rows = weights[w.indices[start:end]]
                out[u] = w.data[start:end] @ rows[:, self.pool[u]]
            return out

        return self._get(("ease", scale, h), self._ease_maker(scale, h), pooled)

    def nbr(self, k: int, h: float | None) -> Part:
        def pooled() -> np.ndarray:
            assert self.pool is not None
            out = np.zeros(self.pool.shape, dtype=np.float32)
            for u, row in enumerate(self._nbr_rows(k, h)):
                out[u] = row[self.pool[u]]
            return out

        return self._get(("nbr", k, h), self._nbr_maker(k, h), pooled)

    def factor(self, rank: int, h: float | None) -> Part:
        def pooled() -> np.ndarray:
            assert self.pool is not None and self.fitted.factors is not None
            vectors, scale = self.fitted.factors[0][:, :rank], self.fitted.factors[1]
            users = np.asarray((self.weights(h) @ sp.diags(scale)) @ vectors, dtype=np.float32)
            pooled_scores: np.ndarray = np.einsum("ur,upr->up", users, vectors[self.pool])
            return pooled_scores

        return self._get(("factor", rank, h), self._factor_maker(rank, h), pooled)

    def _als_vectors(self) -> np.ndarray:
        assert self.fitted.als is not None
        return self.fitted.als[0]

    def _als_users(self, h: float | None) -> np.ndarray:
        """Each validation user's ALS vector, folded in as a request folds it in."""
        assert self.fitted.als is not None
        vectors, gram = self.fitted.als
        w = self.weights(h)
        users = np.zeros((len(self.inputs), vectors.shape[1]), dtype=np.float32)
        for u in range(len(self.inputs)):
            start, end = w.indptr[u], w.indptr[u + 1]
            users[u] = fold_in(vectors, gram, w.indices[start:end], w.data[start:end])
        return users

    def als(self, h: float | None) -> Part:
        def pooled() -> np.ndarray:
            assert self.pool is not None
            vectors = self._als_vectors()
            out: np.ndarray = np.einsum("ur,upr->up", self._als_users(h), vectors[self.pool])
            return out

        return self._get(("als", h), lambda: self._als_users(h) @ self._als_vectors().T, pooled)

    def ndcg_at_10(self, out: np.ndarray, exclude: bool) -> float:
        """Mean NDCG@10 of the validation users (the protocol's metric), vectorised; `out` is
        overwritten."""
        if self.invalid is not None:
            out[self.invalid] = -np.inf
        if exclude:
            out[self.seen] = -np.inf
        k = len(self.discount)
        top = np.argpartition(-out, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(out, top, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        finite = np.isfinite(np.take_along_axis(values, order, axis=1))
        hits = np.take_along_axis(self.truth, top, axis=1) & finite
        return float(np.mean((hits * self.discount).sum(axis=1) / self.ideal))


def top_columns(values: np.ndarray, take: int, block: int = 64) -> list[np.ndarray]:
    """Each row's `take` largest entries' columns, in no order. A whole-row argpartition costs
    about 50 ns an entry (1.4 s on 620 users × 48k items under load); instead the `take`-th
    largest of a row's block maxima is a floor under its `take`-th largest entry (those maxima
    are `take` distinct entries), and only the entries at or above it are partitioned."""
    rows, n = values.shape
    whole = n - n % block
    if whole // block < take:
        return list(np.argpartition(-values, take - 1, axis=1)[:, :take])
    maxima = values[:, :whole].reshape(rows, whole // block, block).max(axis=2)
    floor = np.partition(maxima, maxima.shape[1] - take, axis=1)[:, maxima.shape[1] - take]
    out = []
    for u in range(rows):
        found = np.flatnonzero(values[u] >= floor[u])
        if len(found) > take:
            found = found[np.argpartition(-values[u, found], take - 1)[:take]]
        out.append(found)
    return out


def blend(scores: ValidationScores, cfg: Mapping[str, Any]) -> np.ndarray:
    """Every validation user's scores under `cfg`, as `UserPersonalization.scores`."""
    fitted, h = scores.fitted, cfg["recency_half_life"]
    ease = None
    if fitted.dense and cfg["ease_blend"] > 0:
        ease = scores.ease(cfg["lambda_scale"], h)
    top: np.ndarray | None
    if ease is not None and cfg["ease_blend"] >= 1:
        out, top = ease.values.copy(), ease.top
    else:
        nbr = scores.nbr(cfg["neighbours"], h)
        if ease is None:
            out, top = nbr.values.copy(), nbr.top
        else:
            b = cfg["ease_blend"]
            out = nbr.values * ((1.0 - b) / nbr.top) + (b / ease.top) * ease.values
            top = None
    rank = cfg["hidden_dimension"]
    if rank is None and not fitted.dense:
        rank = SPARSE_RANK
    if rank:
        als = cfg.get("factor_model") == "als" and fitted.als is not None
        factor = scores.als(h) if als else scores.factor(rank, h)
        fb = cfg["factor_blend"]
        best = np.maximum(out.max(axis=1), 1e-12)[:, None] if top is None else top
        out = out * ((1.0 - fb) / best) + (fb / factor.top) * factor.values
    best_score = out.max(axis=1)[:, None]
    live = best_score > 0
    if not cfg["exclude_seen"] and cfg["repeat_weight"] > 0:
        w = scores.pooled_weights(h)
        out += (cfg["repeat_weight"] * best_score * live) * w * scores.repeat_rate
    explore = scores.params.exploration_weight
    if explore > 0 and len(fitted.recipe.new_items):
        bonus = scores.explore * (np.maximum(out, 0.0) + 0.1 * best_score)
        out += explore * bonus * live
    return out
