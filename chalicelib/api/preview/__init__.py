"""The marketer's Content Card preview (`GET /preview`): `message` builds the Braze message from
the page's controls (no python-liquid), `braze_liquid` renders it as Braze would, `page` makes the
HTML page. Only `routes.preview` imports `page`, so python-liquid loads for that route alone."""
