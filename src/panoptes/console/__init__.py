"""The web console: server-rendered pages over the same services as the API.

`panoptes.console.app.build_console` returns the routes `panoptes serve` mounts
beside the API on one port (`/` and `/console/...`). Every Panorama action goes
through `PanoramaBackend.handle(operation, RequestContext, params)` as the signed-in
user's account; the console's own state is only its users and sessions
(`models.py`, `users.py`).
"""
