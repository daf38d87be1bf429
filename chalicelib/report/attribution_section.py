"""The report's online section: what the served lists did (`chalicelib.attribution`), per
solution version and per Braze campaign, with the very figures `python -m chalicelib
attribution` prints, and a clear word when nothing was served or no Currents event arrived.

Every name in it (a campaign's comes from the Connected Content URL or from Braze Currents, so
anyone who can edit a campaign chooses it) is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from chalicelib.attribution import COLUMNS, Attribution, Figures
from chalicelib.report.svg import PALETTE, hbar_chart


def _table(table_id: str, title: str, groups: Mapping[str, Figures], total: Figures) -> str:
    head = "".join(f'<th title="{escape(full)}">{escape(full)}</th>' for _, full in COLUMNS)
    rows = [
        f"<tr><th scope=row>{escape(name)}</th>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in figures.cells())
        + "</tr>"
        for name, figures in sorted(groups.items())
    ]
    rows.append(
        "<tr class=best><th scope=row>total</th>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in total.cells())
        + "</tr>"
    )
    return f'<table id="{table_id}"><tr><th>{escape(title)}</th>{head}</tr>{"".join(rows)}</table>'


def _ctr_chart(result: Attribution) -> str:
    """Click-through rate per solution version, in percent as the tables write it."""
    shown = [
        (name, f.as_dict()["ctr"]) for name, f in sorted(result.by_version.items()) if f.impressions
    ]
    if not shown:
        return ""
    return hbar_chart(
        "Click-through rate by solution version (clicks over impressions)",
        [name for name, _ in shown],
        [100 * ctr for _, ctr in shown],
        [PALETTE[n % len(PALETTE)] for n in range(len(shown))],
        x_label="CTR (%)",
        value_format="{:.1f}%",
    )


def section(result: Attribution) -> str:
    days = f"{result.days:g} days" if result.days is not None else "the history kept"
    command = "python -m chalicelib attribution" + (
        f" --days {result.days:g}" if result.days is not None else ""
    )
    head = (
        "<section id=attribution><h2>What the served lists did "
        f"<span class=note>last {days}</span></h2>"
    )
    if not result.total.served:
        return (
            f"{head}<p id=attribution-empty>No recommendation list was served in the last {days}: "
            "each list <code>GET /recommendations</code>, <code>/related-items</code> or "
            "<code>/rankings</code> answers for a user is recorded with its "
            "<code>X-Recommendation-Id</code>, and Braze Currents' impressions, clicks and "
            "purchases are counted against it once imported.</p></section>"
        )
    rules = (
        f"<p class=note>As <code>{escape(command)}</code> prints them: impressions and clicks "
        "Braze Currents reported for each list's recommendation id; CTR is clicks over "
        "impressions (- where Currents reported none); purchases of an item of a clicked list "
        f"by the same user within {result.window_hours:g} h after the click "
        "(<code>RECS_ATTRIBUTION_WINDOW_HOURS</code>), with their revenue. Fallback lists are "
        "counted as <code>fallback</code>.</p>"
    )
    waiting = (
        "<p id=attribution-no-currents><strong>No Braze Currents event was imported for "
        f"the last {days}</strong>: the lists served are counted, but impressions, clicks and "
        "purchases stay at zero until Currents files are imported (<code>python -m "
        "chalicelib import currents PATH</code>; on AWS the <code>ingest_currents</code> "
        "function reads them as Braze delivers them).</p>"
        if not result.engagements
        else ""
    )
    return (
        f"{head}{rules}{waiting}"
        f"{_table('attribution-by-version', 'solution version', result.by_version, result.total)}"
        f"{_table('attribution-by-campaign', 'Braze campaign', result.by_campaign, result.total)}"
        f"<div class=charts>{_ctr_chart(result)}</div></section>"
    )
