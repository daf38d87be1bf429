"""Each dataset group's data on the engine: its SQLite store (the local provider's
`LocalStore`: interactions, users and items, fed by imports and the events API), its solution
versions' model files, and the versions loaded for serving (`ServedVersion`, the local provider's
public served state) with the group's catalogue for item filters and metadata.

A dataset group named `shop` lives in `DATA_DIR/groups/shop/`; its models in its `models/`.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.batchfile import decode_filter_values
from chalicelib.catalogue import InMemoryCatalogue, normalise
from chalicelib.engine.filters import MAX_EVENTS_PER_TYPE, UserData, compile_filter
from chalicelib.engine.solution import Ranked, SolutionModel
from chalicelib.providers.local.served import ServedVersion
from chalicelib.providers.local.store import LocalStore

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def schema_fields(avro: Mapping[str, Any]) -> dict[str, str]:
    """A Personalize Avro schema as the CSV validator's field specs (`"string categorical"`)."""
    fields: dict[str, str] = {}
    for field in avro.get("fields", []):
        kind = field["type"]
        flags = []
        if isinstance(kind, list):
            flags.append("nullable")
            kind = next(k for k in kind if k != "null")
        if field.get("categorical"):
            flags.append("categorical")
        if field.get("textual"):
            flags.append("textual")
        fields[str(field["name"]).upper()] = " ".join([str(kind), *flags])
    return fields


def field_of(key: str) -> str:
    """A PutUsers/PutItems property key (`numberOfRatings`) as its schema field
    (`NUMBER_OF_RATINGS`)."""
    return _CAMEL.sub("_", key).upper()


class Group:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = LocalStore(path)
        self._lock = threading.Lock()
        self._served: dict[str, ServedVersion] = {}
        self._catalogue: InMemoryCatalogue | None = None
        self._catalogue_rev: int | None = None

    def model_path(self, version_id: str) -> Path:
        return self.store.models_dir / f"{version_id}.npz"

    def catalogue(self) -> InMemoryCatalogue:
        """The items dataset (imports and PutItems), rebuilt when it changes."""
        rev = self.store.revisions().get("items_rev", 0)
        with self._lock:
            if self._catalogue is None or rev != self._catalogue_rev:
                self._catalogue = InMemoryCatalogue(self.store.items(), revision=rev)
                self._catalogue_rev = rev
                self._served.clear()  # rebuilt against the new catalogue on next use
            return self._catalogue

    def served(self, version: Mapping[str, Any]) -> ServedVersion:
        """The solution version (its registry record) loaded for serving. Personalize does not
        restrict answers to items with metadata: every item the model knows may be returned."""
        catalogue = self.catalogue()
        version_id = str(version["_versionId"])
        with self._lock:
            found = self._served.get(version_id)
            if found is None:
                model = SolutionModel.load(self.model_path(version_id))
                row = {
                    "version_id": version_id,
                    "solution": version["solutionArn"],
                    "recipe": model.recipe_name,
                    "max_seq": version["_maxSeq"],
                }
                found = ServedVersion(row, model, catalogue, None)
                self._served[version_id] = found
            return found

    def mask(
        self,
        served: ServedVersion,
        expression: str | None,
        filter_values: Mapping[str, Any] | None,
        user_id: str | None,
        current_item: str | None = None,
    ) -> np.ndarray | None:
        """The items a filter lets through for this user and these values (None: all)."""
        if expression is None:
            return None
        compiled = compile_filter(expression)
        values = decode_filter_values(filter_values or {})
        events: Sequence[tuple[str, str, float]] = ()
        properties = None
        if user_id and compiled.needs_events:
            events = self.store.filter_events(user_id, MAX_EVENTS_PER_TYPE)
        if user_id and compiled.needs_user:
            properties = normalise(self.store.user(user_id) or {})
        current = None
        if current_item is not None:
            current = served.catalogue.fields_of(current_item) or {}
        user = UserData(events, properties, current)
        return compiled.mask(served.item_fields(), values, user)

    def recommend(
        self, served: ServedVersion, user_id: str, n: int, mask: np.ndarray | None
    ) -> Ranked:
        """The user's recommendations; a user with no history at all gets the popular items,
        scored by their share of interactions, as the service answers a cold user."""
        history = served.history(self.store, user_id)
        if len(history.items):
            return served.recommend(history, n, mask)
        model = served.model
        order = (
            model.popular_order if mask is None else model.popular_order[mask[model.popular_order]]
        )
        top = order[:n]
        total = float(model.popularity.sum()) or 1.0
        scores = [round(float(v) / total, 6) for v in model.popularity[top]]
        return Ranked(model.item_ids[top].tolist(), [*scores])

    def related(
        self, served: ServedVersion, item_id: str, n: int, mask: np.ndarray | None
    ) -> list[str] | None:
        return served.related(item_id, n, mask)

    def rank(
        self, served: ServedVersion, user_id: str, items: Sequence[str], mask: np.ndarray | None
    ) -> Ranked:
        """`items` best first; items a filter drops are left out, as the service does."""
        ranked = served.rank(served.history(self.store, user_id), items)
        if mask is None:
            return ranked
        index = served.model.item_index
        keep = [
            (i, s)
            for i, s in zip(ranked.item_ids, ranked.scores, strict=True)
            if i not in index or mask[index[i]]
        ]
        return Ranked([i for i, _ in keep], [s for _, s in keep])

    def metadata(self, item_id: str, columns: Sequence[str]) -> dict[str, str]:
        """The asked columns of an item (`metadataColumns`), as the service returns them:
        strings, multiple categorical values joined with `|`."""
        fields = self.catalogue().fields_of(item_id) or {}
        out: dict[str, str] = {}
        for column in columns:
            value = fields.get(column.lower())
            if value is None:
                continue
            if isinstance(value, list):
                value = "|".join(str(v) for v in value)
            out[column] = str(value)[:20_000]
        return out


class Groups:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "groups"
        self._lock = threading.Lock()
        self._groups: dict[str, Group] = {}

    def of(self, group_arn: str) -> Group:
        name = group_arn.rpartition("/")[2]
        with self._lock:
            found = self._groups.get(name)
            if found is None:
                found = self._groups[name] = Group(self.root / name)
            return found

    def drop(self, group_arn: str) -> None:
        name = group_arn.rpartition("/")[2]
        with self._lock:
            group = self._groups.pop(name, None)
        if group is not None:
            group.store.drop_connection()
        shutil.rmtree(self.root / name, ignore_errors=True)


# Which requests each engine recipe answers (Personalize's recipe types).
KINDS_OF_RECIPE: dict[str, tuple[str, ...]] = {
    "user-personalization": ("recommend", "rank"),
    "personalized-ranking": ("rank",),
    "similar-items": ("related",),
    "popularity-count": ("recommend",),
}
