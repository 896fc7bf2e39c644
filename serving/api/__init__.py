"""The HTTP service: FastAPI app factory (``app.create_app``), micro-batcher, errors, auth, metrics, server."""
