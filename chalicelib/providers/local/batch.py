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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.batchfile import MAX_ITEM_LIST, decode_filter_values, read_lines
from chalicelib.engine.recipes.base import top_k
from chalicelib.engine.solution import SolutionModel
from chalicelib.filters import FilterError, FilterRequest
from chalicelib.providers.local.state import Served
from chalicelib.vocabulary import BatchReport, Progress

if TYPE_CHECKING:
    from chalicelib.providers.local.provider import LocalProvider

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


@dataclass
class _Job:
    provider: LocalProvider
    num_results: int
    flt: FilterRequest | None
    solution: Served | None  # fixed by --solution; else chosen per line from the campaigns

    def served(self, kind: str) -> Served:
        if self.solution is not None:
            recipe = self.solution.version["recipe"]
            if kind not in KINDS.get(recipe, ()):
                raise LineError(f"solution {self.solution.version['solution']!r} ({recipe}) "
                                f"does not answer {_shape(kind)} lines")  # fmt: skip
            return self.solution
        served = self.provider._current().campaigns.get(CAMPAIGN_OF_KIND[kind])
        if served is None:
            raise LineError(f"no trained solution serves {_shape(kind)} lines: run `train`")
        return served


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


def _filter(job: _Job, line: Mapping[str, Any]) -> FilterRequest | None:
    if job.flt is None:
        if "filterValues" in line:
            raise LineError('"filterValues" given but the job has no filter (--filter)')
        return None
    own = line.get("filterValues")
    if own is None:
        return job.flt
    if not isinstance(own, dict):
        raise LineError('"filterValues" must be an object')
    try:
        values = decode_filter_values(own)
    except ValueError as exc:
        raise LineError(str(exc)) from None
    return FilterRequest(job.flt.name, {**job.flt.values, **values})


def _known_user(job: _Job, model: SolutionModel, user_id: str) -> bool:
    store = job.provider.store
    return (
        user_id in model.user_index or store.user(user_id) is not None or store.has_events(user_id)
    )


def _scores(values: np.ndarray, indices: np.ndarray) -> list[float]:
    return [round(float(s), 6) for s in values[indices]]


def _recommend(job: _Job, served: Served, user_id: str, flt: FilterRequest | None) -> dict:
    model = served.model
    if not _known_user(job, model, user_id):
        raise LineError(f"unknown userId {user_id!r}")
    recent = job.provider.store.user_events(user_id, served.version["max_seq"])
    history, weights = model.fold_in(user_id, [(i, t) for i, t, _ in recent])
    allowed = job.provider._mask(served, user_id, flt)
    if len(history) == 0 or served.version["recipe"] == "popularity-count":
        # What Personalize gives a user with no history: popular items, without scores.
        order = model.popular_order
        if allowed is not None:
            order = order[allowed[order]]
        return {"recommendedItems": model.item_ids[order[: job.num_results]].tolist()}
    scores = model.recipe.scores(history, weights)
    if model.exclude_seen:
        allowed = np.ones(model.n_items, dtype=bool) if allowed is None else allowed.copy()
        allowed[history] = False
    best = top_k(scores, job.num_results, allowed)
    return {"recommendedItems": model.item_ids[best].tolist(), "scores": _scores(scores, best)}


def _related(job: _Job, served: Served, item_id: str, flt: FilterRequest | None) -> dict:
    model = served.model
    if item_id not in model.item_index and item_id not in job.provider.catalogue():
        raise LineError(f"unknown itemId {item_id!r}")
    if flt is not None:
        flt = replace(flt, current_item=item_id)
    allowed = job.provider._mask(served, None, flt)
    items = model.related(item_id, job.num_results, allowed)
    if items is None:  # in the catalogue, never interacted with: popular items
        order = (
            model.popular_order
            if allowed is None
            else model.popular_order[allowed[model.popular_order]]
        )
        items = [i for i in model.item_ids[order[: job.num_results + 1]].tolist() if i != item_id]
    return {"recommendedItems": items[: job.num_results]}


def _rank(job: _Job, served: Served, line: Mapping[str, Any], flt: FilterRequest | None) -> dict:
    user_id, given = line["userId"], list(dict.fromkeys(line["itemList"]))
    model = served.model
    if not _known_user(job, model, user_id):
        raise LineError(f"unknown userId {user_id!r}")
    unknown = [i for i in given if i not in model.item_index]
    if unknown:
        raise LineError(f"unknown itemId(s) in itemList: {', '.join(unknown[:5])}")
    recent = job.provider.store.user_events(user_id, served.version["max_seq"])
    history, weights = model.fold_in(user_id, [(i, t) for i, t, _ in recent])
    indices = np.asarray([model.item_index[i] for i in given], dtype=np.int64)
    if flt is not None:
        mask = job.provider._mask(served, user_id, flt)
        if mask is not None:
            indices = indices[mask[indices]]
    if len(history) == 0:  # no history: popularity order, as Personalize does for a cold user
        values = model.popularity.astype(np.float64)
    else:
        values = model.recipe.scores(history, weights)
    order = indices[np.argsort(-values[indices], kind="stable")]
    return {"recommendedItems": model.item_ids[order].tolist(), "scores": _scores(values, order)}


def _answer(job: _Job, line: Mapping[str, Any]) -> dict[str, Any]:
    kind = _kind(line)
    served = job.served(kind)
    flt = _filter(job, line)
    if kind == "recommend":
        return _recommend(job, served, line["userId"], flt)
    if kind == "related":
        return _related(job, served, line["itemId"], flt)
    return _rank(job, served, line, flt)


def _solution(provider: LocalProvider, name: str) -> Served:
    """The version a campaign serves for solution `name`, else its newest stored version."""
    known = [s.name for s in provider.config.solutions]
    if name not in known:
        raise ValueError(f"no solution {name!r} in the configuration (known: {', '.join(known)})")
    for served in provider._current().campaigns.values():
        if served.version["solution"] == name:
            return served
    version = provider.store.latest_version(name)
    if version is None:
        raise ValueError(f"solution {name!r} has no trained version: run `train --solution {name}`")
    model = SolutionModel.load(provider._artifact(version["version_id"]), version)
    catalogue = provider.catalogue()
    allowed = None
    if len(catalogue):
        allowed = np.fromiter((i in catalogue for i in model.item_ids.tolist()), bool)
    return Served(version, model, allowed, catalogue)


def run_batch(
    provider: LocalProvider,
    input_path: Path,
    output_path: Path,
    num_results: int,
    *,
    solution: str | None = None,
    flt: FilterRequest | None = None,
    progress: Progress | None = None,
) -> BatchReport:
    if not 1 <= num_results <= 500:  # Personalize's numResults range
        raise ValueError("the number of results must be between 1 and 500")
    if flt is not None and flt.name not in provider.config.filters:
        raise ValueError(f"no filter {flt.name!r} in the configuration")
    job = _Job(provider, num_results, flt, _solution(provider, solution) if solution else None)
    lines = written = 0
    errors: list[str] = []
    tmp = output_path.with_name(output_path.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        for number, raw in read_lines(input_path):
            lines += 1
            given: Any = raw.strip()
            try:
                given = json.loads(raw)
                if not isinstance(given, dict):
                    raise LineError("a line must be a JSON object")
                record = {"input": given, "output": _answer(job, given), "error": None}
                written += 1
            except (json.JSONDecodeError, LineError, FilterError) as exc:
                message = f"bad JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else str(exc)
                if len(errors) < KEEP_ERRORS:
                    errors.append(f"line {number}: {message}")
                record = {"input": given, "output": None, "error": message}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if progress and lines % 1000 == 0:
                progress("batch", lines, None)
    tmp.replace(output_path)  # a crash never leaves a half-written output behind its name
    if progress:
        progress("batch", lines, lines)
    return BatchReport(lines, written, errors)
