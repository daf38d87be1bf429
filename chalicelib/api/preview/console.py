"""`GET /report`: the evaluation report of `chalicelib.report` served live, with which version
each campaign serves and what the lists served in the last 30 days did; the preview page links to
it and it links back. Served where the preview is (`python -m chalicelib serve`, `chalice
local`); the deployed Lambda has neither (`routes.report`)."""

from __future__ import annotations

from chalicelib.api.preview.page import HEADERS, served_versions
from chalicelib.api.web import Reply
from chalicelib.attribution import DEFAULT_DAYS, over_last_days
from chalicelib.report.build import CSP as REPORT_CSP
from chalicelib.report.build import render
from chalicelib.report.sources import DEFAULT_LIMIT, PEERS_FILE, newest, read_peers
from chalicelib.seam.runtime import Runtime

# The report's own policy (no script, no request: only inline styles and data: images), and
# never framed.
CSP = f"{REPORT_CSP}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def report_page(rt: Runtime) -> Reply:
    peers_path = rt.settings.data_dir / PEERS_FILE
    peers, _ = read_peers(peers_path)  # an unreadable file: the page says it has no peers
    html = render(
        newest(rt.workflow.versions(), DEFAULT_LIMIT),
        served_versions(rt),
        peers,
        peers_source=f"RECS_DATA_DIR/{PEERS_FILE}",  # the server's paths are its own
        provider=rt.settings.provider,
        attribution=over_last_days(
            rt.loop.attribution, DEFAULT_DAYS, rt.settings.attribution_window_hours
        ),
        preview_link="preview",  # relative, as the preview's link here: works under a stage path
    )
    return Reply(200, html, {**HEADERS, "Content-Security-Policy": CSP})
