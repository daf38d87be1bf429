"""Personalize ARNs derived from settings: datasets live under their dataset group's name."""

from __future__ import annotations

from chalicelib.names import personalize_name
from chalicelib.vocabulary import Dataset


class MissingSettingError(ValueError):
    """A setting the `personalize` provider needs is empty; the message names it."""


def dataset_arn(dataset_group_arn: str, dataset: Dataset) -> str:
    """`…:dataset-group/NAME` becomes `…:dataset/NAME/ITEMS` (or USERS, INTERACTIONS)."""
    if not dataset_group_arn:
        raise MissingSettingError("RECS_DATASET_GROUP_ARN is not set")
    prefix, sep, name = dataset_group_arn.rpartition(":dataset-group/")
    if not sep or not name:
        raise MissingSettingError(
            f"RECS_DATASET_GROUP_ARN is not a dataset group ARN: {dataset_group_arn!r}"
        )
    return f"{prefix}:dataset/{name}/{dataset.upper()}"


def dataset_group_name(dataset_group_arn: str) -> str:
    dataset_arn(dataset_group_arn, "items")  # validates, with the same messages
    return dataset_group_arn.rpartition(":dataset-group/")[2]


def filter_name(dataset_group: str, name: str) -> str:
    """Filter names are unique per account and region, not per dataset group: prefix them so
    that two stages (two dataset groups) in one account can both have `exclude-purchased`."""
    try:
        return personalize_name(dataset_group, name)
    except ValueError as exc:
        raise MissingSettingError(str(exc)) from exc


def filter_arn(dataset_group_arn: str, name: str) -> str:
    """The ARN `setup` gives the configured filter `name` in this dataset group."""
    group = dataset_group_name(dataset_group_arn)
    prefix = dataset_group_arn.rpartition(":dataset-group/")[0]
    return f"{prefix}:filter/{filter_name(group, name)}"
