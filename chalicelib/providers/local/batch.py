"""Batch inference on the `local` provider, in Personalize's JSON-lines formats
(`chalicelib.batchfile`): `{"userId"}` → recommendations with scores, `{"itemId"}` → related
items, `{"userId", "itemList"}` → the list re-ranked with scores.

As in a Personalize batch job, one solution version answers every line: `--solution`'s (the
version a campaign serves, else its newest), or without it the version of the campaign that
serves the line's kind. A line the solution's recipe cannot answer, bad JSON, a missing field or
an unknown id is written back with its `error` and counted, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from chalicelib.batchfile import MAX_ITEM_LIST, decode_filter_values, read_lines
from chalicelib.config import ProjectConfig
from chalicelib.filters import FilterError, FilterRequest, MissingFilterValueError
from chalicelib.providers.local.filtering import LocalFilters
from chalicelib.providers.local.served import ServedVersion
from chalicelib.providers.local.state import ServingState
from chalicelib.providers.local.store import LocalStore
from chalicelib.vocabulary import BatchReport, Progress

# Which recipes answer which kind of line (Personalize's recipe types).
KINDS: dict[str, tuple[str, ...]] = {
    "user-personalization": ("recommend", "rank"),
    "personalized-ranking": ("rank",),
    "similar-items": ("related",),
    "popularity-count": ("recommend",),
}
CAMPAIGN_OF_KIND = {"recommend": "recommendations", "related": "related-items", "rank": "rankings"}
KEEP_ERRORS = 100  # messages kept in the report; every error is in the output file


class LineError(ValueError):
    """This line cannot be answered; the message goes into its `error` field."""


class BatchJob:
    """One batch inference run: `num_results` per line, the job's filter, and the solution
    version that answers (fixed by `use_solution`, else per line the campaign's)."""

    def __init__(
        self,
        config: ProjectConfig,
        store: LocalStore,
        state: ServingState,
        filters: LocalFilters,
        *,
        num_results: int,
        flt: FilterRequest | None,
    ) -> None:
        if not 1 <= num_results <= 500:  # Personalize's numResults range
            raise ValueError("the number of results must be between 1 and 500")
        if flt is not None and flt.name not in config.filters:
            raise ValueError(f"no filter {flt.name!r} in the configuration")
        self.config, self.store, self.state, self.filters = config, store, state, filters
        self.num_results, self.flt = num_results, flt
        self.solution: ServedVersion | None = None

    def use_solution(self, name: str) -> None:
        """Answer every line with solution `name`: the version a campaign serves, else its
        newest stored version."""
        known = [s.name for s in self.config.solutions]
        if name not in known:
            raise ValueError(
                f"no solution {name!r} in the configuration (known: {', '.join(known)})"
            )
        for served in self.state.current().campaigns.values():
            if served.solution == name:
                self.solution = served
                return
        version = self.store.latest_version(name)
        if version is None:
            raise ValueError(
                f"solution {name!r} has no trained version: run `train --solution {name}`"
            )
        self.solution = self.state.load(version)

    def served(self, kind: str) -> ServedVersion:
        if self.solution is not None:
            recipe = self.solution.recipe
            if kind not in KINDS.get(recipe, ()):
                raise LineError(f"solution {self.solution.solution!r} ({recipe}) "
                                f"does not answer {_shape(kind)} lines")  # fmt: skip
            return self.solution
        served = self.state.current().campaigns.get(CAMPAIGN_OF_KIND[kind])
        if served is None:
            raise LineError(f"no trained solution serves {_shape(kind)} lines: run `train`")
        return served

    def answer(self, line: Mapping[str, Any]) -> dict[str, Any]:
        kind = _kind(line)
        served = self.served(kind)
        flt = self._filter(line)
        try:
            if kind == "recommend":
                return self._recommend(served, line["userId"], flt)
            if kind == "related":
                return self._related(served, line["itemId"], flt)
            return self._rank(served, line, flt)
        except MissingFilterValueError as exc:  # worded for the API: a batch has no query
            name = exc.placeholder
            raise exc.given_as(
                f'"filterValues": {{"{name}": "\\"VALUE\\""}} on the line, '
                f"or --filter-value {name}=VALUE for the whole job",
                several='"\\"a\\",\\"b\\"" in filterValues, --filter-value repeated',
            ) from None

    def run(
        self, input_path: Path, output_path: Path, progress: Progress | None = None
    ) -> BatchReport:
        lines = written = 0
        errors: list[str] = []
        # The lines to answer, counted first: the progress has its total, and a missing input
        # is said before any output file is made.
        total = sum(1 for _ in read_lines(input_path))
        if progress:
            progress("batch", 0, total)
        tmp = output_path.with_name(output_path.name + ".part")
        with tmp.open("w", encoding="utf-8") as out:
            for number, raw in read_lines(input_path):
                lines += 1
                given: Any = raw.strip()
                record: dict[str, Any]
                try:
                    given = json.loads(raw)
                    if not isinstance(given, dict):
                        raise LineError("a line must be a JSON object")
                    record = {"input": given, "output": self.answer(given), "error": None}
                    written += 1
                except (json.JSONDecodeError, LineError, FilterError) as exc:
                    bad_json = isinstance(exc, json.JSONDecodeError)
                    message = f"bad JSON: {exc}" if bad_json else str(exc)
                    if len(errors) < KEEP_ERRORS:
                        errors.append(f"line {number}: {message}")
                    record = {"input": given, "output": None, "error": message}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                if progress and lines % 100 == 0:
                    progress("batch", lines, max(total, lines))
        tmp.replace(output_path)  # a crash never leaves a half-written output behind its name
        if progress:
            progress("batch", lines, lines)
        return BatchReport(lines, written, errors)

    # -- lines -------------------------------------------------------------------------------

    def _filter(self, line: Mapping[str, Any]) -> FilterRequest | None:
        if self.flt is None:
            if "filterValues" in line:
                raise LineError('"filterValues" given but the job has no filter (--filter)')
            return None
        own = line.get("filterValues")
        if own is None:
            return self.flt
        if not isinstance(own, dict):
            raise LineError('"filterValues" must be an object')
        try:
            values = decode_filter_values(own)
        except ValueError as exc:
            raise LineError(str(exc)) from None
        return FilterRequest(self.flt.name, {**self.flt.values, **values})

    def _known_user(self, served: ServedVersion, user_id: str) -> bool:
        store = self.store
        return (
            user_id in served.model.user_index
            or store.user(user_id) is not None
            or store.has_events(user_id)
        )

    def _recommend(
        self, served: ServedVersion, user_id: str, flt: FilterRequest | None
    ) -> dict[str, Any]:
        if not self._known_user(served, user_id):
            raise LineError(f"unknown userId {user_id!r}")
        history = served.history(self.store, user_id)
        mask = self.filters.mask(served, user_id, flt)
        if len(history.items) == 0 or served.recipe == "popularity-count":
            # What Personalize gives a user with no history: popular items, without scores.
            return {"recommendedItems": served.popular(self.num_results, mask)}
        best = served.recommend(history, self.num_results, mask)
        return {"recommendedItems": best.item_ids, "scores": best.scores}

    def _related(
        self, served: ServedVersion, item_id: str, flt: FilterRequest | None
    ) -> dict[str, Any]:
        if not served.knows_item(item_id) and item_id not in served.catalogue:
            raise LineError(f"unknown itemId {item_id!r}")
        if flt is not None:
            flt = replace(flt, current_item=item_id)
        mask = self.filters.mask(served, None, flt)
        items = served.related(item_id, self.num_results, mask)
        if items is None:  # in the catalogue, never interacted with: popular items
            popular = served.popular(self.num_results + 1, mask)
            items = [i for i in popular if i != item_id]
        return {"recommendedItems": items[: self.num_results]}

    def _rank(
        self, served: ServedVersion, line: Mapping[str, Any], flt: FilterRequest | None
    ) -> dict[str, Any]:
        user_id, given = line["userId"], list(dict.fromkeys(line["itemList"]))
        if not self._known_user(served, user_id):
            raise LineError(f"unknown userId {user_id!r}")
        unknown = [i for i in given if not served.knows_item(i)]
        if unknown:
            raise LineError(f"unknown itemId(s) in itemList: {', '.join(unknown[:5])}")
        history = served.history(self.store, user_id)
        if flt is not None:
            mask = self.filters.mask(served, user_id, flt)
            if mask is not None:
                index = served.model.item_index
                given = [i for i in given if mask[index[i]]]
        # A user without history: popularity order, as Personalize ranks for a cold user.
        ranked = served.rank(history, given)
        return {"recommendedItems": ranked.item_ids, "scores": ranked.scores}


def _shape(kind: str) -> str:
    return {"recommend": '{"userId"}', "related": '{"itemId"}', "rank": '{"userId","itemList"}'}[
        kind
    ]


def _kind(line: Mapping[str, Any]) -> str:
    if "itemList" in line:
        if not isinstance(line.get("userId"), str) or not line["userId"]:
            raise LineError('a ranking line needs "userId" (a string) with "itemList"')
        items = line["itemList"]
        if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            raise LineError('"itemList" must be a non-empty list of item ids (strings)')
        if len(items) > MAX_ITEM_LIST:
            raise LineError(f'"itemList" takes at most {MAX_ITEM_LIST} items')
        return "rank"
    if "userId" in line:
        if not isinstance(line["userId"], str) or not line["userId"]:
            raise LineError('"userId" must be a non-empty string')
        return "recommend"
    if "itemId" in line:
        if not isinstance(line["itemId"], str) or not line["itemId"]:
            raise LineError('"itemId" must be a non-empty string')
        return "related"
    raise LineError('a line needs "userId", "itemId", or "userId" with "itemList"')
