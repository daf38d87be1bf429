"""Training a solution version as Personalize does: knobs chosen on validation users (and tuned
with `performHPO`), metrics on held-out test users, then the served model fitted on all the data.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.config import EventOptions, HpoConfig
from chalicelib.engine.data import Interactions
from chalicelib.engine.diagnostics import diagnose
from chalicelib.engine.evaluation import CUTOFFS, collect, metrics_of, split
from chalicelib.engine.preparation import apply_events
from chalicelib.engine.recipes import RECIPES
from chalicelib.engine.recipes.user_personalization import (
    PersonalizedRankingParams,
    UserPersonalizationParams,
)
from chalicelib.engine.selection import STEPS as KNOB_STEPS
from chalicelib.engine.selection import Selection, choose
from chalicelib.engine.solution import SolutionModel, fit
from chalicelib.engine.tuning import TuningResult, tune
from chalicelib.vocabulary import Progress

# Up to this many items, the held-out model and the served one (EASE: items² floats each, 400 MB
# at 10k items) are fitted side by side.
PARALLEL_DENSE_ITEMS = 10_000


def choose_knobs(
    recipe_name: str,
    hyperparameters: dict[str, Any],
    train_users: Interactions,
    progress: Callable[[int], None] | None = None,
) -> Selection:
    """The knobs `hyperparameters` leaves unset, chosen on a validation split of `train_users`
    (nothing for a recipe without automatic defaults, or with `auto_tune = false`); `progress`
    hears of the selection's steps done."""
    params = RECIPES[recipe_name].Params.model_validate(hyperparameters)
    if not isinstance(params, UserPersonalizationParams) or not params.auto_tune:
        return Selection()
    given = dict(hyperparameters)
    if isinstance(params, PersonalizedRankingParams):
        given.setdefault("exclude_seen", params.exclude_seen)  # a ranking never drops items
    return choose(given, params, train_users, progress)


def choose_and_fit(
    recipe_name: str, hyperparameters: dict[str, Any], train_users: Interactions
) -> tuple[SolutionModel, Selection]:
    """What `train` builds for its held-out evaluation: knobs chosen, then fitted."""
    selection = choose_knobs(recipe_name, hyperparameters, train_users)
    params = RECIPES[recipe_name].Params.model_validate(
        {**hyperparameters, **selection.values_for(train_users)}
    )
    return fit(recipe_name, params, train_users), selection


@dataclass(frozen=True)
class TrainingResult:
    model: SolutionModel
    metrics: dict[str, float]
    counts: dict[str, int]
    seconds: float
    tuning: TuningResult | None = None
    # What `auto_tune` chose and its validation figures (None: nothing was chosen).
    choice: dict[str, Any] | None = None
    # The report's figures (engine.diagnostics) on the same held-out lists as `metrics`.
    diagnostics: dict[str, Any] | None = None


def train(
    recipe_name: str,
    hyperparameters: dict[str, Any],
    data: Interactions,
    progress: Progress | None = None,
    *,
    events: EventOptions | None = None,
    hpo: HpoConfig | None = None,
) -> TrainingResult:
    """Evaluate on Personalize's split, then fit the served model on all the data. With `hpo`,
    tune on the split's training users first."""
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    if recipe_name not in RECIPES:
        raise ValueError(f"unknown recipe {recipe_name!r}; known: {', '.join(sorted(RECIPES))}")
    params = RECIPES[recipe_name].Params.model_validate(hyperparameters)
    events = events or EventOptions()
    total = len(data)
    data = apply_events(data, events)
    data.check_trainable()  # Personalize counts after event type and value filtering
    parts = split(data)
    tuning = None
    held_params = params
    choice = None
    report("choosing knobs", 0, KNOB_STEPS)
    selection = choose_knobs(
        recipe_name,
        hyperparameters,
        parts.train,
        lambda done: report("choosing knobs", done, KNOB_STEPS),
    )
    report("choosing knobs", KNOB_STEPS, KNOB_STEPS)
    validate = RECIPES[recipe_name].Params.model_validate
    base = {**hyperparameters, **selection.values_for(parts.train)}
    tuned: dict[str, Any] = {}
    if hpo is not None:  # the chosen knobs are HPO's defaults, its first trial
        tuning = tune(recipe_name, base, parts.train, hpo, progress)
        tuned = tuning.best
    if selection.chosen or tuned:
        held_params = validate({**base, **tuned})
        params = validate({**hyperparameters, **selection.values_for(data), **tuned})
        choice = selection.summary(data) if selection.chosen else None
    report("evaluating", 0, len(parts.inputs))
    # The served model does not depend on the evaluation: on 2 cores it is fitted beside it (BLAS,
    # scipy and numpy's kernels release the GIL). Two models in memory at once are held only
    # while each is small; a dense items² EASE matrix above PARALLEL_DENSE_ITEMS is fitted alone.
    dense_limit = getattr(params, "dense_item_limit", 0)
    side_by_side = (os.cpu_count() or 1) > 1 and (
        data.n_items <= PARALLEL_DENSE_ITEMS or data.n_items > dense_limit
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        final = pool.submit(fit, recipe_name, params, data, events) if side_by_side else None
        held_out = fit(recipe_name, held_params, parts.train, events)
        lists = collect(held_out.recommend_many(parts.inputs, max(CUTOFFS)), parts, progress)
        del held_out
        metrics = metrics_of(lists, parts, data.n_items)
        diagnostics = diagnose(lists, parts, data.n_items)
        report("fitting", 0, 1)
        model = final.result() if final else fit(recipe_name, params, data, events)
        report("fitting", 1, 1)
    counts = {
        "interactions": total,
        "training_interactions": len(data),
        "users": data.n_users,
        "items": data.n_items,
    }
    seconds = time.perf_counter() - started
    return TrainingResult(model, metrics, counts, seconds, tuning, choice, diagnostics)
