"""Interaction data as integer-coded arrays and sparse matrices, the input of every recipe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

MIN_INTERACTIONS = 1000
MIN_USERS = 25


class NotEnoughDataError(ValueError):
    """Fewer interactions or users than Personalize requires to train."""


@dataclass(frozen=True)
class Interactions:
    """One row per event, coded: `users[i]` indexes `user_ids`, `items[i]` indexes `item_ids`."""

    user_ids: np.ndarray  # str, sorted
    item_ids: np.ndarray  # str, sorted
    users: np.ndarray  # int32
    items: np.ndarray  # int32
    ts: np.ndarray  # float64
    event_types: np.ndarray  # str
    values: np.ndarray | None = None  # float64 EVENT_VALUE, NaN where none was given
    weights: np.ndarray | None = None  # float32 per event (event-type weights); None: all 1

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[str, str, str, float | None, float]]) -> Interactions:
        if not rows:
            return cls.empty()
        users, items, types, values, ts = zip(*rows, strict=True)
        user_ids, user_codes = np.unique(np.asarray(users, dtype=str), return_inverse=True)
        item_ids, item_codes = np.unique(np.asarray(items, dtype=str), return_inverse=True)
        return cls(
            user_ids=user_ids,
            item_ids=item_ids,
            users=user_codes.astype(np.int32),
            items=item_codes.astype(np.int32),
            ts=np.asarray(ts, dtype=np.float64),
            event_types=np.asarray(types, dtype=str),
            values=np.asarray([np.nan if v is None else v for v in values], dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> Interactions:
        text = np.asarray([], dtype=str)
        codes = np.zeros(0, dtype=np.int32)
        return cls(text, text, codes, codes, np.zeros(0), text)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def check_trainable(self) -> None:
        """Personalize's minimum: 1,000 interactions and 25 users with at least 2 each."""
        if len(self) < MIN_INTERACTIONS:
            raise NotEnoughDataError(
                f"training needs at least {MIN_INTERACTIONS} interactions; there are {len(self)}"
            )
        per_user = np.bincount(self.users, minlength=self.n_users)
        active = int((per_user >= 2).sum())
        if active < MIN_USERS:
            raise NotEnoughDataError(
                f"training needs at least {MIN_USERS} users with 2 or more interactions; "
                f"there are {active}"
            )

    def select(self, mask: np.ndarray) -> Interactions:
        """The same coding (ids keep their indices) restricted to the events in `mask`."""
        return Interactions(
            self.user_ids,
            self.item_ids,
            self.users[mask],
            self.items[mask],
            self.ts[mask],
            self.event_types[mask],
            None if self.values is None else self.values[mask],
            None if self.weights is None else self.weights[mask],
        )

    def with_weights(self, weights: np.ndarray) -> Interactions:
        return replace(self, weights=np.asarray(weights, dtype=np.float32))

    def event_weights(self) -> np.ndarray:
        if self.weights is None:
            return np.ones(len(self.users), dtype=np.float32)
        return self.weights

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (user, item) pairs ordered by user then by their last event's time:
        (users, items, the pair's strongest event weight)."""
        order = np.lexsort((self.ts, self.users))
        users, items = self.users[order], self.items[order]
        weights = self.event_weights()[order]
        key = users.astype(np.int64) * max(self.n_items, 1) + items
        # The strongest weight per pair: sort by key, reduce; then keep each pair's last event.
        by_key = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(key[by_key]) != 0])
        strongest = np.maximum.reduceat(weights[by_key], starts) if len(key) else weights
        _, last_rev = np.unique(key[::-1], return_index=True)  # unique keys ascending
        last = len(key) - 1 - last_rev
        keep = np.argsort(last, kind="stable")
        return users[last[keep]], items[last[keep]], strongest[keep].astype(np.float32)

    def matrix(self) -> sp.csr_matrix:
        """Users × items: the strongest event weight of each (user, item), 1.0 by default."""
        users, items, weights = self._pairs()
        return sp.csr_matrix(
            (weights, (users, items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )

    def histories(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR-style (indptr, item indices, weights) of each user's distinct items, most recent
        last; a weight is the pair's strongest event weight."""
        users, items, weights = self._pairs()
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=self.n_users), out=indptr[1:])
        return indptr, items.astype(np.int32), weights

    def item_first_seen(self) -> np.ndarray:
        """Time of each item's first interaction (inf for an item with none)."""
        first = np.full(self.n_items, np.inf)
        np.minimum.at(first, self.items, self.ts)
        return first
