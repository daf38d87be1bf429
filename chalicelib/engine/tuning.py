"""Hyperparameter optimisation (Personalize's `performHPO`) with optuna's TPE sampler.

The caller passes only the training users of Personalize's split; this module splits them again
(90% fit, 10% validate, same oldest-90%/newest-10% rule), so the held-out test users that produce a
version's reported metrics never influence the chosen hyperparameters.

optuna rather than a hand-written search: TPE finds a good region in the few trials Personalize
allows (≤ 40 training jobs) and handles mixed integer, continuous and categorical ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.engine.data import Interactions
from chalicelib.engine.evaluation import evaluate, split

Progress = Callable[[str, int, int | None], None]
VALIDATION_SEED = 4242  # not the test split's seed: another draw of users


@dataclass(frozen=True)
class TuningResult:
    best: dict[str, Any]  # the tuned hyperparameters only
    best_value: float
    objective: str
    trials: list[dict[str, Any]]  # {"params", "value"} per trial, in order

    def summary(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "best_value": self.best_value,
            "best": self.best,
            "trials": len(self.trials),
        }


def tune(
    recipe_name: str,
    base: Mapping[str, Any],
    train_users: Interactions,
    hpo: Mapping[str, Any],
    progress: Progress | None = None,
    *,
    seed: int = 0,
) -> TuningResult:
    """Search `hpo["algorithm_hyperparameter_ranges"]` for `recipe_name`, starting from the
    fixed hyperparameters `base`; `hpo` is a `config.HpoConfig` dumped to a dict."""
    import optuna  # noqa: PLC0415 - only a solution that asks for HPO pays for the import

    from chalicelib.engine.recipes import RECIPES  # noqa: PLC0415
    from chalicelib.engine.solution import fit  # noqa: PLC0415 - solution imports this module

    params_cls = RECIPES[recipe_name].Params
    ranges = hpo["algorithm_hyperparameter_ranges"]
    names = [
        r["name"]
        for kind in ranges.values()
        for r in kind  # type: ignore[attr-defined]
    ]
    unknown = sorted(set(names) - set(params_cls.model_fields))
    if unknown:
        raise ValueError(
            f"{recipe_name} has no hyperparameter {', '.join(map(repr, unknown))} to tune; "
            f"known: {', '.join(sorted(params_cls.model_fields))}"
        )
    if not names:
        raise ValueError("performHPO needs at least one hyperparameter range")
    objective = hpo["hpo_objective"]["metric_name"]
    maximize = hpo["hpo_objective"]["type"] == "Maximize"
    n_trials = int(hpo["hpo_resource_config"]["max_number_of_training_jobs"])
    validation = split(train_users, seed=VALIDATION_SEED)
    report = progress or (lambda stage, done, total: None)

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for r in ranges["integer_hyperparameter_ranges"]:
            chosen[r["name"]] = trial.suggest_int(r["name"], r["min_value"], r["max_value"])
        for r in ranges["continuous_hyperparameter_ranges"]:
            low, high = r["min_value"], r["max_value"]
            # A range spanning orders of magnitude (a regularisation) is searched in log scale.
            log = low > 0 and high / low >= 100
            chosen[r["name"]] = trial.suggest_float(r["name"], low, high, log=log)
        for r in ranges["categorical_hyperparameter_ranges"]:
            chosen[r["name"]] = trial.suggest_categorical(r["name"], r["values"])
        return chosen

    trials: list[dict[str, Any]] = []

    def run(trial: optuna.Trial) -> float:
        chosen = suggest(trial)
        params = params_cls.model_validate({**base, **chosen})
        model = fit(recipe_name, params, validation.train)
        value = evaluate(model.recommend_indices, validation, train_users.n_items)[objective]
        trials.append({"params": chosen, "value": value})
        report("tuning hyperparameters", len(trials), n_trials)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    report("tuning hyperparameters", 0, n_trials)
    study.optimize(run, n_trials=n_trials)
    return TuningResult(
        best=dict(study.best_params),
        best_value=round(float(study.best_value), 6),
        objective=objective,
        trials=trials,
    )
