"""Segments on the `local` provider: the users most likely to engage with some items, from the
engine's scores (what Personalize's Item-Affinity batch segment jobs give on AWS).

A user's affinity for an item is the share of the catalogue it outscores in that user's scores
(0..1, free of the recipe's scale, so users compare); for several items, the mean. Every user
the served model knows is scored with their current history (trained plus recent events).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chalicelib.providers.local.served import ServedVersion
from chalicelib.providers.local.store import LocalStore
from chalicelib.segments import SegmentError


def affinity(
    served: ServedVersion, store: LocalStore, item_ids: Sequence[str], top: int
) -> list[tuple[str, float]]:
    model = served.model
    known = [model.item_index[i] for i in item_ids if i in model.item_index]
    if not known:
        raise SegmentError("none of these items is known to the served model")
    targets = np.asarray(known, dtype=np.int64)
    found: list[tuple[str, float]] = []
    for user in model.user_ids.tolist():
        history = served.history(store, user)
        if len(history.items) == 0:
            continue
        scores = model.recipe.scores(history.items, history.weights)
        ordered = np.sort(scores)
        shares = np.searchsorted(ordered, scores[targets], side="left") / len(scores)
        found.append((user, round(float(shares.mean()), 6)))
    found.sort(key=lambda pair: (-pair[1], pair[0]))
    return found[:top]
