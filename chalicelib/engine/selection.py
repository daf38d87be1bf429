"""Defaults that come from the data: at `train`, user-personalization chooses its main knobs on a
validation split of the training users only (the test users that give a version its metrics
never reach this module).

The knobs: EASE's λ (as a multiple of the mean item count, so that it scales with the data), the
EASE/neighbour blend, the recency half-life, the neighbour count, the factor model's rank and
blend, the repeat boost and, where most held-out items were bought before, the seen-item policy.
A knob set in the configuration is kept as given and never searched.

It stays cheap because each expensive part is fitted once and every candidate is then a
recombination: one EASE inverse per λ the search reaches (λ's grid is walked from its middle
while a step improves, the first two fitted side by side), neighbours at the largest count (a
smaller count is a prefix of each sorted row), the factor model at the largest rank (a smaller
rank is a prefix of its columns). Validation users are scored as one matrix per component and
half-life, and candidates are compared by coordinate ascent on NDCG@10. `blend` mirrors
`UserPersonalization.scores` (tests/unit/test_engine_selection.py holds the two together).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from chalicelib.engine.data import Interactions
from chalicelib.engine.evaluation import Split, split
from chalicelib.engine.preparation import apply_history_percentiles
from chalicelib.engine.recipes.implicit_als import ALS_RANK, als_factors
from chalicelib.engine.recipes.item_item import (
    binary_gram,
    cooccurrence_neighbours,
    ease_weights,
    gram_matrix,
    item_factors,
)
from chalicelib.engine.recipes.user_personalization import (
    SPARSE_RANK,
    UserPersonalization,
    UserPersonalizationParams,
    exploration_bonus,
    repeat_rates,
)
from chalicelib.engine.validation_scores import Components, ValidationScores, blend

VALIDATION_SEED = 4242  # not the test split's seed: another draw of users
VALIDATION_SHARE = 0.15
MAX_VALIDATION_USERS = 3000
MAX_CELLS = 30_000_000  # validation users × items scored at once (120 MB per matrix)
# λ as multiples of the mean item count (the mean diagonal of the Gram matrix): the real shop's
# former fixed λ=2000 is about 32 of them.
LAMBDA_STEPS = (8.0, 32.0, 128.0)
HALF_LIVES: tuple[float | None, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, None)
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
NEIGHBOURS = (25, 50, 100)
RANKS = (0, 32, 64)
FACTOR_BLENDS = (0.3, 0.5, 0.7, 0.9)
REPEAT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
# The seen-item policy is chosen from the data only where most held-out items were bought
# before (a shop of consumables); elsewhere it stays Personalize's exclusion.
REPEAT_SHARE = 0.5
ROUNDS = 2
# Knobs whose every value costs a fit (an EASE inverse, items³): walked along their sorted grid
# from the current value, up then down, only while each step improves.
WALKED = ("lambda_scale",)
# ALS (the other factor model) is a candidate up to this many interactions: above it, its three
# fits (choice, evaluation, version; about 1 CPU-s per 150k interactions each) would take a
# 400k-interaction version past the SPEC's 10 s on 2 cores.
ALS_INTERACTIONS = 200_000


def validation_split(train_users: Interactions, repeat: int = 0) -> Split:
    """A split of the training users only, with the protocol's rule for each held-out user: a
    larger share than the test split's 10% (sturdier figures), capped in users and cells.
    `repeat` draws another split (HPO scores its trials on several)."""
    users = max(train_users.n_users, 1)
    share = min(
        VALIDATION_SHARE,
        MAX_VALIDATION_USERS / users,
        MAX_CELLS / (max(train_users.n_items, 1) * users),
    )
    return split(train_users, holdout=share, seed=VALIDATION_SEED + repeat)


def mean_item_count(data: Interactions) -> float:
    """Distinct (user, item) pairs per item: the scale EASE's λ is chosen in."""
    if len(data) == 0:
        return 1.0
    # Sort-based distinct count: numpy 2's hashing np.unique is far slower on 400k keys.
    pairs = np.sort(data.users.astype(np.int64) * data.n_items + data.items)
    distinct = 1 + int(np.count_nonzero(pairs[1:] != pairs[:-1]))
    return max(distinct / max(data.n_items, 1), 1.0)


@dataclass(frozen=True)
class Selection:
    """What was chosen and the validation figures behind it (stored with the version)."""

    chosen: dict[str, Any] = field(default_factory=dict)
    lambda_scale: float | None = None  # λ / mean item count, when λ was chosen
    figures: dict[str, Any] = field(default_factory=dict)

    def values_for(self, data: Interactions) -> dict[str, Any]:
        """The chosen knobs for a fit on `data`: λ rescaled to its mean item count."""
        values = dict(self.chosen)
        if self.lambda_scale is not None:
            values["regularization"] = round(self.lambda_scale * mean_item_count(data), 1)
        return values

    def summary(self, data: Interactions) -> dict[str, Any]:
        return {"chosen": self.values_for(data), **self.figures}


def _fit_components(
    learn: Interactions, params: UserPersonalizationParams, fixed: set[str], scales: list[float]
) -> Components:
    x = learn.matrix()
    dense = learn.n_items <= params.dense_item_limit
    m = mean_item_count(learn)
    searching_blend = "ease_blend" not in fixed
    use_ease = dense and (searching_blend or params.ease_blend > 0)
    use_nbr = not dense or searching_blend or params.ease_blend < 1
    ranks = [params.hidden_dimension] if "hidden_dimension" in fixed else list(RANKS)
    max_rank = max([r or 0 for r in ranks] + ([] if dense else [SPARSE_RANK]))
    recipe = UserPersonalization(params)
    recipe.explore = exploration_bonus(learn, params.exploration_item_age_cut_off)
    recipe.new_items = np.flatnonzero(recipe.explore > 0)
    recipe.repeat_rate = repeat_rates(learn)
    max_k = params.neighbours if "neighbours" in fixed else max(NEIGHBOURS)
    gram = gram_matrix(x)
    ease = EaseByScale(x, gram, m)
    # The start's λ and the next one up are fitted beside the rest; another only if the ascent
    # walks to it.
    first = scales[len(scales) // 2 :][:2] if use_ease else []
    with ThreadPoolExecutor(max_workers=2) as pool:
        eases = {s: pool.submit(ease_weights, x, s * m, gram) for s in first}
        nbr = cooccurrence_neighbours(x, max_k, 0.5, 1, binary_gram(x, gram)) if use_nbr else None
        factors = item_factors(x, max_rank) if max_rank else None
        als = (
            als_factors(x, _als_rank(params, fixed)) if _als_allowed(learn, params, fixed) else None
        )
        ease.update({s: f.result() for s, f in eases.items()})
    return Components(dense, ease, nbr, factors, recipe, als)


def _als_rank(params: UserPersonalizationParams, fixed: set[str]) -> int:
    given = params.hidden_dimension if "hidden_dimension" in fixed else None
    return given or ALS_RANK


def _als_allowed(learn: Interactions, params: UserPersonalizationParams, fixed: set[str]) -> bool:
    if "factor_model" in fixed:
        return params.factor_model == "als"
    return len(learn) <= ALS_INTERACTIONS and _als_rank(params, fixed) == ALS_RANK


class EaseByScale(dict[float, np.ndarray]):
    """EASE weights per λ scale; one not fitted yet is fitted when first asked for."""

    def __init__(self, x: sp.csr_matrix, gram: sp.csr_matrix, mean_count: float) -> None:
        super().__init__()
        self.x, self.gram, self.mean_count = x, gram, mean_count

    def __missing__(self, scale: float) -> np.ndarray:
        self[scale] = ease_weights(self.x, scale * self.mean_count, self.gram)
        return self[scale]


def _candidates(
    params: UserPersonalizationParams,
    fixed: set[str],
    dense: bool,
    scales: list[float],
    als: bool,
) -> dict[str, tuple[Any, ...]]:
    space: dict[str, tuple[Any, ...]] = {
        "recency_half_life": HALF_LIVES,
        "neighbours": NEIGHBOURS,
        "hidden_dimension": RANKS,
        "factor_blend": FACTOR_BLENDS,
        "repeat_weight": REPEAT_WEIGHTS,
    }
    if dense:
        space["lambda_scale"] = tuple(scales)
        space["ease_blend"] = BLENDS
    if "regularization" in fixed:
        space.pop("lambda_scale", None)
    if als:
        space["factor_model"] = ("svd", "als")
    return {k: v for k, v in space.items() if k not in fixed}


# The knob choice's steps, as progress reports them: the components fitted, the validation
# users' score matrices made, the search done.
STEPS = 3


def choose(
    hyperparameters: Mapping[str, Any],
    params: UserPersonalizationParams,
    train_users: Interactions,
    progress: Callable[[int], None] | None = None,
) -> Selection:
    """Choose the knobs `hyperparameters` leaves unset on a validation split of `train_users`;
    `progress` hears of each of the STEPS done."""
    report = progress or (lambda done: None)
    started = time.perf_counter()
    fixed = set(hyperparameters)
    validation = validation_split(train_users)
    learn = apply_history_percentiles(
        validation.train,
        params.min_user_history_length_percentile,
        params.max_user_history_length_percentile,
    )
    m = mean_item_count(learn)
    scales = [params.regularization / m] if "regularization" in fixed else list(LAMBDA_STEPS)
    fitted = _fit_components(learn, params, fixed, scales)
    report(1)
    scores = ValidationScores(fitted, validation, params, train_users.n_items)
    space = _candidates(params, fixed, fitted.dense, scales, fitted.als is not None)
    start = {**params.model_dump(), "lambda_scale": scales[len(scales) // 2]}
    scores.use_pool(start)
    report(2)
    memo: dict[tuple[Any, ...], float] = {}

    def value(cfg: Mapping[str, Any]) -> float:
        key = tuple(sorted(_relevant(cfg, fitted.dense).items()))
        als_rank = fitted.als[0].shape[1] if fitted.als is not None else 0
        if cfg.get("factor_model") == "als" and _rank(cfg, fitted.dense) not in (0, als_rank):
            return -1.0  # ALS is fitted at one rank only
        if key not in memo:  # a later round revisits settings already scored
            memo[key] = scores.ndcg_at_10(blend(scores, cfg), cfg["exclude_seen"])
        return memo[key]

    at_defaults = value(start)
    repeats = _repeat_share(validation)
    with ThreadPoolExecutor(max_workers=2) as pool:
        cfg, best = _ascend(value, space, fitted.dense, dict(start), at_defaults, pool=pool)
        if "exclude_seen" not in fixed and repeats >= REPEAT_SHARE:
            flipped = {**cfg, "exclude_seen": not cfg["exclude_seen"]}
            other, other_best = _ascend(
                value, space, fitted.dense, flipped, value(flipped), pool=pool
            )
            if other_best > best:
                cfg, best = other, other_best
    report(3)
    searched = [k for k in (*space, "exclude_seen") if k != "lambda_scale" and k not in fixed]
    chosen = {k: cfg[k] for k in searched}
    if cfg["exclude_seen"]:
        chosen.pop("repeat_weight", None)  # boosts seen items only
    if not _rank(cfg, fitted.dense):
        chosen.pop("factor_blend", None)  # no factor model to blend
        chosen.pop("factor_model", None)
    elif chosen.get("factor_model") == "als" and "hidden_dimension" in chosen:
        chosen["hidden_dimension"] = ALS_RANK
    figures = {
        "validation_users": len(validation.inputs),
        "validation_ndcg_at_10_defaults": round(at_defaults, 6),
        "validation_ndcg_at_10_chosen": round(best, 6),
        "repeat_share": round(repeats, 4),
        "candidates_evaluated": len(memo),
        "seconds": round(time.perf_counter() - started, 3),
    }
    scale = cfg["lambda_scale"] if "lambda_scale" in space else None
    if scale is not None:
        figures["lambda_per_mean_item_count"] = scale
    return Selection(chosen, scale, figures)


def _relevant(cfg: Mapping[str, Any], dense: bool) -> dict[str, Any]:
    """The knobs that change `blend`'s result under `cfg`: settings differing only in the
    others score the same, so they are scored once."""
    keys = ["recency_half_life", "hidden_dimension", "exclude_seen"]
    ease = dense and cfg["ease_blend"] > 0
    if ease:
        keys += ["lambda_scale", "ease_blend"]
    if not (ease and cfg["ease_blend"] >= 1):
        keys += ["neighbours", "ease_blend"]
    if _rank(cfg, dense):
        keys += ["factor_blend", "factor_model"]
    if not cfg["exclude_seen"]:
        keys.append("repeat_weight")
    return {k: cfg[k] for k in keys}


def _rank(cfg: Mapping[str, Any], dense: bool) -> int:
    """The factor model's rank under `cfg` (0: none), as the recipe resolves it."""
    rank = cfg["hidden_dimension"]
    return int(SPARSE_RANK if rank is None and not dense else rank or 0)


def _ascend(
    value: Callable[[Mapping[str, Any]], float],
    space: Mapping[str, tuple[Any, ...]],
    dense: bool,
    cfg: dict[str, Any],
    best: float,
    *,
    pool: ThreadPoolExecutor,
) -> tuple[dict[str, Any], float]:
    """Coordinate ascent from `cfg` (worth `best`): one knob at a time, each candidate value
    tried with the others held, a better one kept at once; until a round changes nothing."""
    for _ in range(ROUNDS):
        changed = False
        for knob, values in space.items():
            if knob == "repeat_weight" and cfg["exclude_seen"]:
                continue  # the boost applies to seen items only
            if knob in ("factor_blend", "factor_model") and not _rank(cfg, dense):
                continue  # no factor model to blend
            if knob in WALKED:
                cfg, best, moved = _walk(value, knob, values, cfg, best)
                changed = changed or moved
                continue
            # The trials differ from `cfg` in this knob only, so scoring them all first (two at a
            # time: numpy's kernels release the GIL) and keeping the first best is the same as
            # trying them one by one.
            trials = [{**cfg, knob: v} for v in values if v != cfg[knob]]
            for trial, result in zip(trials, pool.map(value, trials), strict=True):
                if result > best + 1e-6:
                    cfg, best, changed = trial, result, True
        if not changed:
            break
    return cfg, best


def _walk(
    value: Callable[[Mapping[str, Any]], float],
    knob: str,
    values: tuple[Any, ...],
    cfg: dict[str, Any],
    best: float,
) -> tuple[dict[str, Any], float, bool]:
    """`knob` stepped along its sorted `values` from `cfg`'s, up first, then down if the first
    step up did not improve; a direction stops at its first step that does not improve (the
    score is taken to be unimodal in it)."""
    grid = sorted(values)
    start = grid.index(cfg[knob])
    for direction in (1, -1):
        j, moved = start + direction, False
        while 0 <= j < len(grid):
            trial = {**cfg, knob: grid[j]}
            result = value(trial)
            if result <= best + 1e-6:
                break
            cfg, best, moved = trial, result, True
            j += direction
        if moved:
            return cfg, best, True
    return cfg, best, False


def _repeat_share(parts: Split) -> float:
    """Share of held-out items the user already had in their input."""
    seen = sum(len(t & set(h.tolist())) for h, t in zip(parts.inputs, parts.truths, strict=True))
    return seen / max(sum(len(t) for t in parts.truths), 1)
