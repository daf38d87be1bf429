"""The HTTP edge, free of any framework: `routes` (routing, auth, validation, the seam's call,
decoration within the byte budget), `web` (requests, replies and the error envelope), the API
keys (`auth`, `apikeys`), the response budget, the fallbacks' log, and the production server of
the `local` provider (`server`). `app.py` (Chalice) and `server` both answer through `routes`."""
