"""The evaluation report as one HTML file: what the served lists did (attribution), the stored
solution versions side by side, with inline SVG plots, and the peers' figures of the engine
benchmark when its results file exists.

No script, no external request (its Content-Security-Policy allows none): it can be mailed,
archived or opened from disk. Every value from the store is escaped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from chalicelib.attribution import Attribution
from chalicelib.report.attribution_section import section as attribution_section
from chalicelib.report.svg import PALETTE, Series, bar_chart, hbar_chart, line_chart
from chalicelib.vocabulary import SolutionVersionInfo

METRICS = (
    ("NDCG@5", "normalized_discounted_cumulative_gain_at_5"),
    ("NDCG@10", "normalized_discounted_cumulative_gain_at_10"),
    ("NDCG@25", "normalized_discounted_cumulative_gain_at_25"),
    ("P@5", "precision_at_5"),
    ("P@10", "precision_at_10"),
    ("P@25", "precision_at_25"),
    ("MRR@25", "mean_reciprocal_rank_at_25"),
    ("coverage", "coverage"),
)
NDCG10 = "normalized_discounted_cumulative_gain_at_10"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#1d1d26;margin:0;background:#f6f6fa}
header,section{background:#fff;border:1px solid #d9d9e3;border-radius:8px;margin:16px;padding:16px}
h1{font-size:1.3rem;margin:0 0 4px}h2{font-size:1.1rem;margin:0 0 8px}h3{font-size:1rem}
table{border-collapse:collapse;font-size:.85rem;margin:8px 0}
th,td{border:1px solid #d9d9e3;padding:3px 8px;text-align:right}th{background:#f6f6fa}
td:first-child,th:first-child{text-align:left}.best{font-weight:700}
.served{background:#0b7a3b;color:#fff;border-radius:999px;padding:0 6px;font-size:.75rem}
.note{color:#5b5b6b;font-size:.85rem}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg{background:#fff;border:1px solid #eee;border-radius:6px;max-width:100%;height:auto}
.chart-title{font-weight:600;font-size:13px}.tick,.legend{font-size:11px;fill:#333}
.axis{font-size:11px;fill:#5b5b6b}.grid{stroke:#e6e6ee}
code{font-size:.85em}
#attribution th[scope=row]{text-align:left;font-weight:400;overflow-wrap:anywhere;max-width:30em}
#attribution tr.best th{font-weight:700}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
OURS, PEER, STORED = PALETTE[0], "#999999", PALETTE[2]


def _short(version_id: str) -> str:
    return version_id.split("-", 2)[-1] if version_id.count("-") >= 2 else version_id


def _label(info: SolutionVersionInfo) -> str:
    return f"{_short(info.version_id)}"


def _metrics_table(versions: Sequence[SolutionVersionInfo], served: set[str]) -> str:
    badge = " <span class=served>served</span>"
    head = "".join(
        f"<th>{escape(_label(v))}{badge if v.version_id in served else ''}</th>" for v in versions
    )
    rows = []
    for name, key in METRICS:
        values = [v.metrics.get(key) for v in versions]
        best = max((x for x in values if x is not None), default=None)
        cells = "".join(
            "<td>–</td>"
            if x is None
            else f"<td{' class=best' if x == best and len(versions) > 1 else ''}>{x:.4f}</td>"
            for x in values
        )
        rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    facts: list[tuple[str, Callable[[SolutionVersionInfo], str]]] = [
        ("created (UTC)", lambda v: time.strftime("%Y-%m-%d %H:%M", time.gmtime(v.created))),
        ("training s", lambda v: f"{v.training_seconds:.1f}"),
        ("interactions", lambda v: f"{v.counts.get('interactions', 0):,}"),
        ("users", lambda v: f"{v.counts.get('users', 0):,}"),
        ("items", lambda v: f"{v.counts.get('items', 0):,}"),
        ("held-out users", lambda v: str(v.evaluation.get("users", "–"))),
        ("mean popularity rank of top 10", _popularity_rank),
        ("knobs chosen", _knobs),
    ]
    for name, fact in facts:
        cells = "".join(f"<td>{escape(fact(v))}</td>" for v in versions)
        rows.append(f"<tr><td class=note>{escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "–"


def _popularity_rank(info: SolutionVersionInfo) -> str:
    popularity = info.evaluation.get("popularity")
    rank = popularity.get("mean_popularity_rank") if isinstance(popularity, dict) else None
    return "–" if rank is None else f"{rank:.3f}"


def _knobs(info: SolutionVersionInfo) -> str:
    chosen = info.params.get("chosen")
    knobs = chosen.get("chosen", {}) if isinstance(chosen, Mapping) else {}
    return ", ".join(f"{k}={v}" for k, v in knobs.items()) or "–"


def _detail(info: SolutionVersionInfo, key: str) -> Any:
    """One part of a version's recorded evaluation (engine.diagnostics), or None."""
    return info.evaluation.get(key)


def _curves(versions: Sequence[SolutionVersionInfo], color: Mapping[str, str]) -> list[str]:
    """NDCG@k and coverage@k, quality by history length, popularity: versions that have them."""
    detailed = [v for v in versions if isinstance(_detail(v, "at_k"), dict)]
    if not detailed:
        return []
    ks = [float(k) for k in _detail(detailed[0], "at_k")["k"]]
    charts = [
        line_chart(
            title,
            ks,
            [Series(_label(v), _detail(v, "at_k")[key], color[v.version_id]) for v in detailed],
            x_label="k (items shown)",
            y_label=axis,
        )
        for title, key, axis in (
            ("NDCG@k on held-out users", "ndcg", "NDCG@k"),
            ("Catalogue coverage of the top k", "coverage", "coverage"),
        )
    ]
    buckets: list[str] = []
    for v in detailed:
        buckets += [
            b["history"] for b in _detail(v, "by_history") or [] if b["history"] not in buckets
        ]
    charts.append(
        bar_chart(
            "NDCG@10 by length of the user's history",
            buckets,
            [
                Series(_label(v), [_bucket(v, b) for b in buckets], color[v.version_id])
                for v in detailed
            ],
            y_label="NDCG@10",
            x_label="events in the user's input history",
        )
    )
    popular = [v for v in detailed if isinstance(_detail(v, "popularity"), dict)]
    if popular:
        first = _detail(popular[0], "popularity")
        series = [Series("catalogue: share of interactions", first["catalogue_share"], "#999999")]
        series += [
            Series(
                f"{_label(v)}: share of top-10 slots", _detail(v, "popularity")["recommended_share"]
            )
            for v in popular
        ]
        charts.append(
            bar_chart(
                "Popularity of what is recommended against the catalogue's",
                [str(d) for d in first["decile"]],
                series,
                y_label="share",
                x_label="item popularity decile (1: the most popular tenth of items)",
            )
        )
    return charts


def _bucket(info: SolutionVersionInfo, label: str) -> float | None:
    for b in _detail(info, "by_history") or []:
        if b["history"] == label:
            value = b["ndcg_at_10"]
            return float(value) if value is not None else None
    return None


def _solution(name: str, versions: Sequence[SolutionVersionInfo], served: set[str]) -> str:
    groups = [label for label, _ in METRICS]
    color = {v.version_id: PALETTE[n % len(PALETTE)] for n, v in enumerate(versions)}
    bars = bar_chart(
        f"{name}: Personalize's metrics per version",
        groups,
        [
            Series(_label(v), [v.metrics.get(k) for _, k in METRICS], color[v.version_id])
            for v in versions
        ],
        y_label="value",
    )
    missing = [v for v in versions if not v.evaluation]
    note = (
        f"<p class=note>No per-k or per-history detail for {', '.join(_label(v) for v in missing)}"
        " (trained before it was recorded, or on a provider that does not report it).</p>"
        if missing
        else ""
    )
    charts = "".join([bars, *_curves(versions, color)])
    recipe = escape(versions[0].recipe)
    return (
        f"<section><h2>{escape(name)} <span class=note>recipe {recipe}, "
        f"{len(versions)} version(s), newest first</span></h2>"
        f"{_metrics_table(versions, served)}{note}<div class=charts>{charts}</div></section>"
    )


def _peers(
    results: Mapping[str, Any] | None, source: str, versions: Sequence[SolutionVersionInfo]
) -> str:
    if not results:
        return (
            "<section><h2>Peers</h2><p class=note>No benchmark results at "
            f"<code>{escape(source)}</code>: <code>make bench</code> (or "
            "<code>python bench/engine.py</code>) measures the engine against tuned "
            "open-source peers on the same split and writes them there.</p></section>"
        )
    parts = [
        "<section><h2>Peers (engine benchmark)</h2>",
        f"<p class=note>From <code>{escape(source)}</code>, written "
        f"{escape(str(results.get('written', '?')))} by <code>"
        f"{escape(str(results.get('command', 'bench/engine.py')))}</code>: NDCG@10 and the other "
        "metrics under the same protocol, seen items excluded, each peer tuned on the same "
        "validation users.</p>",
    ]
    for dataset in results.get("datasets", []):
        rows = dataset.get("rows", [])
        if not rows:
            continue
        names = [str(r["model"]) for r in rows]
        values = [r["metrics"].get(NDCG10) for r in rows]
        colors = [OURS if name.startswith("this engine") else PEER for name in names]
        same = [
            v
            for v in versions
            if v.recipe == "user-personalization"
            and v.counts.get("interactions") == dataset.get("interactions")
            and NDCG10 in v.metrics
        ]
        for v in same[:1]:  # the store holds this very dataset: its version beside the peers
            names.append(f"stored {_label(v)}, same data")
            values.append(v.metrics[NDCG10])
            colors.append(STORED)
        title = f"{dataset.get('dataset')}: {dataset.get('title', '')}"
        parts.append(hbar_chart(title, names, values, colors, x_label="NDCG@10"))
        head = "".join(f"<th>{label}</th>" for label, _ in METRICS if label != "P@5")
        body = "".join(
            f"<tr><td>{escape(str(r['model']))}</td>"
            + "".join(
                f"<td>{_number(r['metrics'].get(k))}</td>" for label, k in METRICS if label != "P@5"
            )
            + f"<td>{r.get('fit_seconds', 0):.1f}</td></tr>"
            for r in rows
        )
        parts.append(f"<table><tr><th>model</th>{head}<th>fit s</th></tr>{body}</table>")
    parts.append("</section>")
    return "".join(parts)


def render(
    versions: Sequence[SolutionVersionInfo],
    campaigns: Mapping[str, str | None],
    peers: Mapping[str, Any] | None,
    *,
    peers_source: str,
    provider: str,
    attribution: Attribution | None = None,
    preview_link: str | None = None,
) -> str:
    """The page; `attribution` (what the served lists did) gets its section when given, and
    `preview_link` (the served report's way back to the preview page) a link in the header."""
    served = {v for v in campaigns.values() if v}
    # The solutions in the order of the campaigns serving them (recommendations first).
    ids = {info.version_id: info.solution for info in versions}
    order = [ids[v] for v in campaigns.values() if v in ids]
    by_solution: dict[str, list[SolutionVersionInfo]] = {name: [] for name in order}
    for info in versions:
        by_solution.setdefault(info.solution, []).append(info)
    campaign_rows = "".join(
        f"<tr><td>{escape(c)}</td><td><code>{escape(v or '(none)')}</code></td></tr>"
        for c, v in campaigns.items()
    )
    sections = "".join(_solution(name, vs, served) for name, vs in by_solution.items())
    if not sections:
        sections = (
            "<section><p>No solution version is stored yet: "
            "<code>python -m chalicelib train</code> makes one.</p></section>"
        )
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    online = attribution_section(attribution) if attribution is not None else ""
    nav = (
        f'<nav id="console" aria-label="Console"><a id="preview-link" '
        f'href="{escape(preview_link)}">Content Card preview</a></nav>'
        if preview_link
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Solution versions: evaluation report</title><style>{STYLE}</style></head>
<body><header><h1>Solution versions: evaluation report</h1>{nav}
<p class=note>Generated {generated} on the <code>{escape(provider)}</code> provider.
Metrics follow Amazon Personalize's protocol: 90% of users train; for the other 10%, the oldest
90% of each user's events are the input and the newest 10% the truth. Curves come from the same
held-out lists.</p>
<table><tr><th>campaign</th><th>serves</th></tr>{campaign_rows}</table></header>
{online}{sections}{_peers(peers, peers_source, versions)}
</body></html>
"""
