"""Hyperparameter optimisation (Personalize's `performHPO`) with optuna's TPE sampler.

The caller passes only the training users of Personalize's split; this module splits them again
(`selection.validation_split`'s larger share, the protocol's oldest-90%/newest-10% rule), so the
held-out test users that produce a version's reported metrics never influence the chosen
hyperparameters.

Never worse than the defaults, as far as validation can tell: the defaults (the knobs
`auto_tune` chose from the data, else the recipe's) are the first trial; every trial is scored on
`REPEATS` validation splits drawn with different seeds (one split of a few hundred users is too
noisy to rank trials: on the bundled shop it picked settings worse on the test users than the
defaults), and the best trial replaces the defaults only when its paired per-user gain over them
exceeds `MARGIN` standard errors.

optuna rather than a hand-written search: TPE finds a good region in the few trials Personalize
allows (≤ 40 training jobs) and handles mixed integer, continuous and categorical ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.config import HpoConfig, HyperParameterRanges
from chalicelib.engine.data import Interactions
from chalicelib.engine.evaluation import evaluate, per_user
from chalicelib.engine.recipes import RECIPES
from chalicelib.engine.selection import validation_split
from chalicelib.engine.solution import fit
from chalicelib.vocabulary import Progress

REPEATS = 2
MARGIN = 1.0


@dataclass(frozen=True)
class TuningResult:
    best: dict[str, Any]  # the tuned hyperparameters only (the defaults' values when kept)
    best_value: float
    objective: str
    trials: list[dict[str, Any]]  # {"params", "value"} per trial, in order; the defaults first
    defaults_value: float = float("nan")
    kept_defaults: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "best_value": self.best_value,
            "best": self.best,
            "trials": len(self.trials),
            "defaults_value": self.defaults_value,
            "kept_defaults": self.kept_defaults,
        }


def _names(ranges: HyperParameterRanges) -> list[str]:
    return [
        r.name
        for kind in (
            ranges.integer_hyperparameter_ranges,
            ranges.continuous_hyperparameter_ranges,
            ranges.categorical_hyperparameter_ranges,
        )
        for r in kind
    ]


def _ranges(params_cls: Any, ranges: HyperParameterRanges) -> list[str]:
    names = _names(ranges)
    unknown = sorted(set(names) - set(params_cls.model_fields))
    if unknown:
        raise ValueError(
            f"no hyperparameter {', '.join(map(repr, unknown))} to tune; "
            f"known: {', '.join(sorted(params_cls.model_fields))}"
        )
    if not names:
        raise ValueError("performHPO needs at least one hyperparameter range")
    return names


def _defaults(
    base: Mapping[str, Any], params_cls: Any, ranges: HyperParameterRanges
) -> dict[str, Any]:
    """The ranged knobs' values in `base` (else the recipe's defaults), as they are: the
    defaults stay a candidate even where the given ranges leave them out."""
    defaults = params_cls.model_validate(dict(base)).model_dump()
    return {name: defaults.get(name) for name in _names(ranges)}


def tune(
    recipe_name: str,
    base: Mapping[str, Any],
    train_users: Interactions,
    hpo: HpoConfig,
    progress: Progress | None = None,
    *,
    seed: int = 0,
) -> TuningResult:
    """Search `hpo.algorithm_hyperparameter_ranges` for `recipe_name`, starting from the fixed
    hyperparameters `base`."""
    import optuna  # noqa: PLC0415 - only a solution that asks for HPO pays for the import

    params_cls = RECIPES[recipe_name].Params
    ranges = hpo.algorithm_hyperparameter_ranges
    _ranges(params_cls, ranges)
    objective = hpo.hpo_objective.metric_name
    maximize = hpo.hpo_objective.type == "Maximize"
    n_trials = hpo.hpo_resource_config.max_number_of_training_jobs
    splits = [validation_split(train_users, repeat) for repeat in range(REPEATS)]
    report = progress or (lambda stage, done, total: None)

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for r in ranges.integer_hyperparameter_ranges:
            chosen[r.name] = trial.suggest_int(r.name, r.min_value, r.max_value)
        for c in ranges.continuous_hyperparameter_ranges:
            low, high = c.min_value, c.max_value
            # A range spanning orders of magnitude (a regularisation) is searched in log scale.
            log = low > 0 and high / low >= 100
            chosen[c.name] = trial.suggest_float(c.name, low, high, log=log)
        for k in ranges.categorical_hyperparameter_ranges:
            chosen[k.name] = trial.suggest_categorical(k.name, k.values)
        return chosen

    trials: list[dict[str, Any]] = []
    users: list[np.ndarray] = []  # per trial, the objective per validation user (all splits)

    def run(trial: optuna.Trial | None) -> float:
        chosen = suggest(trial) if trial is not None else _defaults(base, params_cls, ranges)
        params = params_cls.model_validate({**base, **chosen})
        values, mean = [], []
        for validation in splits:
            model = fit(recipe_name, params, validation.train)
            mean.append(evaluate(model.recommend_indices, validation, train_users.n_items))
            values.append(per_user(model.recommend_indices, validation, objective))
        value = float(np.mean([m[objective] for m in mean]))
        trials.append({"params": chosen, "value": round(value, 6)})
        users.append(np.concatenate(values))
        report("tuning hyperparameters", len(trials), n_trials)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    report("tuning hyperparameters", 0, n_trials)
    run(None)  # the defaults first: always a candidate
    study.optimize(run, n_trials=max(n_trials - 1, 1))
    best = 1 + study.best_trial.number
    sign = 1.0 if maximize else -1.0
    if sign * (trials[best]["value"] - trials[0]["value"]) <= 0:
        best = 0
    gain = sign * (users[best] - users[0])
    gain = gain[np.isfinite(gain)]
    pick = best
    if len(gain) > 1:  # a per-user metric: keep the defaults unless the gain is clear
        error = float(gain.std(ddof=1) / np.sqrt(len(gain)))
        pick = best if float(gain.mean()) > MARGIN * error else 0
    return TuningResult(
        best=dict(trials[pick]["params"]),
        best_value=trials[pick]["value"],
        objective=objective,
        trials=trials,
        defaults_value=trials[0]["value"],
        kept_defaults=pick == 0,
    )
