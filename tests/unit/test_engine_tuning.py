"""HPO (Personalize's performHPO) with optuna: trials within the ranges, the best one trains the
version, and the held-out test users never reach the tuner."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from chalicelib.config import HpoConfig, Solution
from chalicelib.engine import training
from chalicelib.engine.data import Interactions
from chalicelib.engine.evaluation import split


def shop() -> Interactions:
    rng = np.random.default_rng(5)
    rows = []
    for u in range(120):
        group = "a" if u % 2 == 0 else "b"
        for j, item in enumerate(rng.choice(20, size=10, replace=False)):
            rows.append((f"u{u}", f"{group}{item}", "purchase", None, 1e9 + u * 1e3 + j))
    return Interactions.from_rows(rows)


def hpo(**ranges: object) -> HpoConfig:
    return HpoConfig.model_validate(
        {
            "hpo_resource_config": {"max_number_of_training_jobs": 4},
            "algorithm_hyperparameter_ranges": ranges,
        }
    )


def test_hpo_tunes_on_training_users_only_and_trains_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = shop()
    seen_by_tuner: list[set[str]] = []
    real_tune = training.tune

    def spy(recipe, base, train_users, config, progress=None):  # type: ignore[no-untyped-def]
        seen_by_tuner.append(set(train_users.user_ids[np.unique(train_users.users)].tolist()))
        return real_tune(recipe, base, train_users, config, progress)

    monkeypatch.setattr(training, "tune", spy)
    stages: list[tuple[str, int, int | None]] = []
    config = hpo(
        continuous_hyperparameter_ranges=[
            {"name": "regularization", "min_value": 1.0, "max_value": 5000.0}
        ],
        integer_hyperparameter_ranges=[{"name": "max_history", "min_value": 1, "max_value": 50}],
    )
    result = training.train(
        "user-personalization", {}, data, lambda *a: stages.append(a), hpo=config
    )

    test_users = set(data.user_ids.tolist()) - set(
        data.user_ids[np.unique(split(data).train.users)].tolist()
    )
    assert len(test_users) == 12 and not test_users & seen_by_tuner[0]
    assert result.tuning is not None and len(result.tuning.trials) == 4
    for trial in result.tuning.trials[1:]:
        assert 1.0 <= trial["params"]["regularization"] <= 5000.0
        assert 1 <= trial["params"]["max_history"] <= 50
    # The defaults (the knobs chosen from the data) are the first trial; the best trial
    # replaces them only with a clear gain on the validation users.
    defaults = result.tuning.trials[0]
    assert defaults["params"]["max_history"] == 200  # the default, even outside the range
    best = max(result.tuning.trials, key=lambda t: t["value"])
    assert result.tuning.best in (best["params"], defaults["params"])
    assert result.tuning.kept_defaults == (result.tuning.best == defaults["params"])
    assert result.model.params.regularization == pytest.approx(result.tuning.best["regularization"])
    assert ("tuning hyperparameters", 4, 4) in stages


def test_hpo_keeps_the_defaults_unless_a_trial_is_clearly_better() -> None:
    """A range that holds only worse settings than the defaults cannot make the version worse:
    a one-item memory (max_history = 1) loses to the defaults, so they are kept."""
    config = hpo(
        integer_hyperparameter_ranges=[{"name": "max_history", "min_value": 1, "max_value": 1}]
    )
    result = training.train("user-personalization", {}, shop(), hpo=config)
    assert result.tuning is not None and result.tuning.kept_defaults
    assert result.model.params.max_history == 200


def test_unknown_hyperparameter_names_are_refused() -> None:
    config = hpo(integer_hyperparameter_ranges=[{"name": "bptt", "min_value": 2, "max_value": 32}])
    with pytest.raises(ValueError, match="no hyperparameter 'bptt'"):
        training.train("user-personalization", {}, shop(), hpo=config)


def test_configuration_checks_hpo_settings() -> None:
    with pytest.raises(ValidationError, match="performHPO needs an hpo_config"):
        Solution.model_validate({"name": "s", "recipe": "user-personalization", "performHPO": True})
    with pytest.raises(ValidationError, match="min_value is above max_value"):
        HpoConfig.model_validate(
            {
                "algorithm_hyperparameter_ranges": {
                    "continuous_hyperparameter_ranges": [
                        {"name": "regularization", "min_value": 10, "max_value": 1}
                    ]
                }
            }
        )
    with pytest.raises(ValidationError, match="less than or equal to 40"):
        HpoConfig.model_validate({"hpo_resource_config": {"max_number_of_training_jobs": 41}})
