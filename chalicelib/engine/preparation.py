"""What a solution trains on: Personalize's event settings and user-history percentiles, applied
to the interactions before any recipe sees them.

- `event_type` (CreateSolution.eventType): train on that event type only.
- `event_value_threshold` (solutionConfig.eventValueThreshold): drop events whose EVENT_VALUE is
  below it (events without a value are kept, as Personalize keeps them).
- `events` (solutionConfig.eventsConfig.eventParametersList): per event type, its own value
  threshold and a weight in [0, 1]. Once a list is given, types it does not name weigh 0 (dropped);
  the matrix a recipe fits holds each (user, item)'s strongest weight, and fold-in uses it too.
- `min/max_user_history_length_percentile` (featurization): users whose history length is below /
  above those percentiles of all users' lengths are left out of training (not out of serving).
"""

from __future__ import annotations

import numpy as np

from chalicelib.config import EventOptions
from chalicelib.engine.data import Interactions


def apply_events(data: Interactions, options: EventOptions) -> Interactions:
    """Drop the events the options exclude and attach the per-event weights."""
    if len(data) == 0 or options == EventOptions():
        return data
    types = np.char.lower(data.event_types.astype(str))
    values = data.values if data.values is not None else np.full(len(data), np.nan)
    keep = np.ones(len(data), dtype=bool)
    if options.event_type is not None:
        keep &= types == options.event_type.lower()
    if options.event_value_threshold is not None:
        keep &= ~(values < options.event_value_threshold)  # NaN (no value) is kept
    weights = np.ones(len(data), dtype=np.float32)
    if options.events:
        weights[:] = 0.0
        for param in options.events:
            match = types == param.event_type.lower()
            if param.event_value_threshold is not None:
                match &= ~(values < param.event_value_threshold)
            weights[match] = param.weight
        keep &= weights > 0
    return data.with_weights(weights).select(keep)


def apply_history_percentiles(data: Interactions, low: float, high: float) -> Interactions:
    """Keep the users whose number of events lies within the [low, high] percentiles."""
    if len(data) == 0 or (low <= 0.0 and high >= 1.0):
        return data
    lengths = np.bincount(data.users, minlength=data.n_users)
    present = lengths[lengths > 0]
    lo, hi = np.quantile(present, [low, high])
    ok = (lengths >= lo) & (lengths <= hi)
    return data.select(ok[data.users])
