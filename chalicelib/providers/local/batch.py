"""Batch inference on the `local` provider, in Personalize's JSON-lines formats:
`{"userId"}` → recommendations, `{"itemId"}` → related items, `{"userId", "itemList"}` → ranking.
A bad line is reported on its own output line with an `error`, never dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.providers.base import BatchReport, FilterRequest

if TYPE_CHECKING:
    from chalicelib.providers.local.provider import LocalProvider


def _answer(provider: LocalProvider, line: dict[str, Any], n: int) -> dict[str, Any]:
    flt = None
    if "filterName" in line:
        values = {k: [v] for k, v in (line.get("filterValues") or {}).items()}
        flt = FilterRequest(line["filterName"], values)
    if isinstance(line.get("itemList"), list) and isinstance(line.get("userId"), str):
        recs = provider.rank(line["userId"], [str(i) for i in line["itemList"]], flt)
    elif isinstance(line.get("userId"), str):
        recs = provider.recommend(line["userId"], n, flt)
    elif isinstance(line.get("itemId"), str):
        recs = provider.related_items(line["itemId"], n, None, flt)
    else:
        raise ValueError('a line needs "userId" (string), "itemId" or "userId" with "itemList"')
    return {"recommendedItems": list(recs.item_ids)}


def run_batch(provider: LocalProvider, input_path: Path, output_path: Path, n: int) -> BatchReport:
    lines = written = 0
    errors: list[str] = []
    with input_path.open(encoding="utf-8") as src, output_path.open("w", encoding="utf-8") as out:
        for number, raw in enumerate(src, start=1):
            if not raw.strip():
                continue
            lines += 1
            record: dict[str, Any]
            try:
                line = json.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError("a line must be a JSON object")
                record = {"input": line, "output": _answer(provider, line, n)}
                written += 1
            except (ValueError, KeyError) as exc:
                errors.append(f"line {number}: {exc}")
                record = {"input": raw.strip(), "error": str(exc)}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return BatchReport(lines, written, errors)
