"""A solution version: a fitted recipe with the data it needs to serve, saved as plain arrays.

Artifacts are `.npz` files loaded with `allow_pickle=False`: loading a model never runs code.
Each file describes itself in a JSON `meta` entry (recipe, hyperparameters, event settings and
the trainer's metadata), so it loads without the store that listed it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from chalicelib.config import EventOptions
from chalicelib.engine.data import Interactions
from chalicelib.engine.preparation import apply_history_percentiles
from chalicelib.engine.recipes import RECIPES, Recipe, top_k
from chalicelib.engine.recipes.base import RecipeParams
from chalicelib.engine.recipes.popularity import popularity

FORMAT = 1  # of the `meta` entry; a model of another format is refused, never misread


class Ranked(NamedTuple):
    """Items best first with their scores (a score is None for an item the model does not
    know)."""

    item_ids: list[str]
    scores: list[float | None]


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


@dataclass
class SolutionModel:
    recipe_name: str
    params: RecipeParams
    recipe: Recipe
    item_ids: np.ndarray
    user_ids: np.ndarray
    hist_indptr: np.ndarray
    hist_indices: np.ndarray
    popularity: np.ndarray
    hist_weights: np.ndarray | None = None  # event-type weight per history entry; None: all 1
    events: EventOptions = field(default_factory=EventOptions)
    # What the trainer recorded with the model (its version id, solution, ...): saved in the file.
    metadata: dict[str, Any] = field(default_factory=dict)
    item_index: dict[str, int] = field(init=False)
    user_index: dict[str, int] = field(init=False)
    popular_order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.item_index = {item: i for i, item in enumerate(self.item_ids.tolist())}
        self.user_index = {user: i for i, user in enumerate(self.user_ids.tolist())}
        self.popular_order = np.argsort(-self.popularity, kind="stable")

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def exclude_seen(self) -> bool:
        return bool(getattr(self.params, "exclude_seen", False))

    def history(self, user_id: str, recent_items: Sequence[str] = ()) -> np.ndarray:
        """The user's distinct known items, oldest first: trained history, then recent events."""
        return self.fold_in(user_id, [(item, "") for item in recent_items])[0]

    def fold_in(
        self, user_id: str, recent_events: Sequence[tuple[str, str]] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """(distinct item indices oldest first, their event weights) of the user's trained
        history followed by `recent_events` (item id, event type) posted since training. An
        empty event type weighs 1; a type the solution's event settings drop is skipped."""
        row = self.user_index.get(user_id)
        if row is not None:
            start, end = self.hist_indptr[row], self.hist_indptr[row + 1]
            trained = self.hist_indices[start:end]
            weights = (
                self.hist_weights[start:end]
                if self.hist_weights is not None
                else np.ones(end - start, dtype=np.float32)
            )
        else:
            trained = np.zeros(0, dtype=np.int32)
            weights = np.zeros(0, dtype=np.float32)
        recent: list[int] = []
        recent_w: list[float] = []
        for item, event_type in recent_events:
            idx = self.item_index.get(item)
            weight = self.events.weight_of(event_type) if event_type else 1.0
            if idx is not None and weight > 0:
                recent.append(idx)
                recent_w.append(weight)
        if not recent:
            return trained, weights
        merged = np.concatenate([trained, np.asarray(recent, dtype=np.int32)])
        merged_w = np.concatenate([weights, np.asarray(recent_w, dtype=np.float32)])
        _, last = np.unique(merged[::-1], return_index=True)
        keep = np.sort(len(merged) - 1 - last)
        return merged[keep], merged_w[keep]

    def recommend_indices(
        self,
        history: np.ndarray,
        n: int,
        allowed: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        return self._best(history, n, allowed, weights)[0]

    def recommend_many(self, histories: Sequence[np.ndarray], n: int) -> Iterator[np.ndarray]:
        """`recommend_indices` of each history (no event weights, no filter), scored in
        batches where the recipe can (the held-out evaluation at `train`), yielded as they
        come so that a caller can show progress."""
        batched = getattr(self.recipe, "scores_many", None)
        rows = batched(histories) if batched else (self.recipe.scores(h) for h in histories)
        for history, scores in zip(histories, rows, strict=True):
            if self.exclude_seen and len(history):
                scores[history] = -np.inf
            yield top_k(scores, n)

    def _best(
        self,
        history: np.ndarray,
        n: int,
        allowed: np.ndarray | None,
        weights: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.recipe.scores(history, weights)  # a fresh array: safe to write to
        if self.exclude_seen and len(history):
            scores[history] = -np.inf  # cheaper than copying a catalogue-sized mask
        best = top_k(scores, n, allowed)
        return best, scores[best]

    def recommend(
        self,
        history: np.ndarray,
        n: int,
        allowed: np.ndarray | None,
        weights: np.ndarray | None = None,
    ) -> Ranked:
        """The `n` best items for the history, each with its score (as Personalize returns)."""
        best, scores = self._best(history, n, allowed, weights)
        return Ranked(self.item_ids[best].tolist(), [*_rounded(scores)])

    def related(self, item_id: str, n: int, allowed: np.ndarray | None) -> list[str] | None:
        """Items similar to `item_id`, or None when the model does not know it."""
        item = self.item_index.get(item_id)
        if item is None:
            return None
        indices, _ = self.recipe.related(item)
        if allowed is not None:
            indices = indices[allowed[indices]]
        return list(self.item_ids[indices[:n]].tolist())

    def rank(
        self, history: np.ndarray, item_ids: Sequence[str], weights: np.ndarray | None = None
    ) -> Ranked:
        """`item_ids` by score, best first, each with its score; for a user without history, by
        popularity (as Personalize ranks for a cold user). Items the model does not know go
        last, in the given order, with no score (None); equal scores keep the given order."""
        if len(history):
            values = self.recipe.scores(history, weights)
        else:
            values = self.popularity.astype(np.float64)
        known = [i for i in item_ids if i in self.item_index]
        unknown = [i for i in item_ids if i not in self.item_index]
        indices = np.fromiter((self.item_index[i] for i in known), np.int64, len(known))
        order = indices[np.argsort(-values[indices], kind="stable")]
        scores: list[float | None] = [*_rounded(values[order])]
        return Ranked(self.item_ids[order].tolist() + unknown, scores + [None] * len(unknown))

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: Path, metadata: Mapping[str, Any] | None = None) -> None:
        """Arrays, plus a JSON `meta` entry describing the model (format, recipe, its
        hyperparameters, event settings and the caller's `metadata`), so that the file loads
        alone. Written to a temporary name first: a crash never leaves half a model behind."""
        meta = {
            "format": FORMAT,
            "recipe": self.recipe_name,
            "params": self.params.model_dump(mode="json"),
            "events": self.events.model_dump(mode="json"),
            "metadata": dict(metadata or {}),
        }
        arrays = {
            "meta": np.asarray(json.dumps(meta, ensure_ascii=False, allow_nan=False)),
            "item_ids": self.item_ids,
            "user_ids": self.user_ids,
            "hist_indptr": self.hist_indptr,
            "hist_indices": self.hist_indices,
            "popularity": self.popularity,
        }
        if self.hist_weights is not None:
            arrays["hist_weights"] = self.hist_weights
        arrays.update({f"recipe_{k}": v for k, v in self.recipe.arrays().items()})
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, allow_pickle=False, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, described_as: Mapping[str, Any] | None = None) -> SolutionModel:
        """The model saved at `path`, from the file alone (`allow_pickle=False`: loading never
        runs code). `described_as` ({"recipe", "params"}, a stored version's row) serves only
        for files written before models described themselves."""
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if "meta" in arrays:
            meta = json.loads(str(arrays.pop("meta")))
            if meta.get("format") != FORMAT:
                raise ValueError(f"model format {meta.get('format')!r}, not {FORMAT}")
            events = EventOptions.model_validate(meta["events"])
        elif described_as is not None:
            meta = {"recipe": described_as["recipe"], "params": described_as["params"]}
            legacy = arrays.pop("events", None)
            events = EventOptions.model_validate_json(str(legacy)) if legacy else EventOptions()
        else:
            raise ValueError(f"{path.name} does not describe its model: train it again")
        recipe_cls = RECIPES[meta["recipe"]]
        known = recipe_cls.Params.model_fields
        params = recipe_cls.Params.model_validate(
            {k: v for k, v in meta["params"].items() if k in known}
        )
        recipe_arrays = {
            k.removeprefix("recipe_"): v for k, v in arrays.items() if k[:7] == "recipe_"
        }
        return cls(
            recipe_name=meta["recipe"],
            params=params,
            recipe=recipe_cls.from_arrays(params, recipe_arrays),
            item_ids=arrays["item_ids"],
            user_ids=arrays["user_ids"],
            hist_indptr=arrays["hist_indptr"],
            hist_indices=arrays["hist_indices"],
            popularity=arrays["popularity"],
            hist_weights=arrays.get("hist_weights"),
            events=events,
            metadata=meta.get("metadata", {}),
        )


def fit(
    recipe_name: str,
    params: RecipeParams,
    data: Interactions,
    events: EventOptions | None = None,
) -> SolutionModel:
    """Fit `recipe_name` on `data` (events already filtered and weighted); the recipe sees only
    the users within the history-length percentiles, serving keeps every user's history."""
    learn = apply_history_percentiles(
        data, params.min_user_history_length_percentile, params.max_user_history_length_percentile
    )
    recipe = RECIPES[recipe_name](params).fit(learn)  # type: ignore[call-arg]
    indptr, indices, weights = data.histories()
    return SolutionModel(
        recipe_name=recipe_name,
        params=params,
        recipe=recipe,
        item_ids=data.item_ids,
        user_ids=data.user_ids,
        hist_indptr=indptr,
        hist_indices=indices,
        popularity=popularity(learn),
        hist_weights=None if data.weights is None else weights,
        events=events or EventOptions(),
    )
