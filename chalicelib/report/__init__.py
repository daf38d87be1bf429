"""The evaluation report of solution versions: one self-contained HTML page (`build`) with its
charts as inline SVG (`svg`). `python -m chalicelib report` (chalicelib.cli.report) writes it."""
