"""Personalize ARNs derived from settings: datasets live under their dataset group's name."""

from __future__ import annotations

from typing import Literal

DatasetType = Literal["interactions", "users", "items"]


class MissingSettingError(ValueError):
    """A setting the `personalize` provider needs is empty; the message names it."""


def dataset_arn(dataset_group_arn: str, dataset: DatasetType) -> str:
    """`…:dataset-group/NAME` becomes `…:dataset/NAME/ITEMS` (or USERS, INTERACTIONS)."""
    if not dataset_group_arn:
        raise MissingSettingError("RECS_DATASET_GROUP_ARN is not set")
    prefix, sep, name = dataset_group_arn.rpartition(":dataset-group/")
    if not sep or not name:
        raise MissingSettingError(
            f"RECS_DATASET_GROUP_ARN is not a dataset group ARN: {dataset_group_arn!r}"
        )
    return f"{prefix}:dataset/{name}/{dataset.upper()}"
