"""``counterpoint serve``: load and verify the model, then run the app under uvicorn (one worker process).

The model is loaded *before* uvicorn binds the port, so a missing, incompatible or tampered folder stops the
command with ``ModelFolderError`` (the CLI prints its message, which says how to fix the folder) instead of a
half-started server. One worker process: the model is loaded once and the micro-batcher sees every request, which
is what makes batching pay; ONNX Runtime uses the cores inside that one process.
"""

from __future__ import annotations

import logging
from pathlib import Path

from serving.settings import environment_summary, load_settings

log = logging.getLogger("counterpoint.server")


def _configure_logging(level: str) -> None:
    # A no-op when the host process already configured logging (tests, an embedding application).
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_server(model: str | Path | None = None, host: str | None = None, port: int | None = None,
               backend: str | None = None) -> None:
    """Serve ``model`` (default: ``COUNTERPOINT_MODEL_DIR`` or ``models/default``) until interrupted."""
    import uvicorn

    from serving.api.app import create_app
    from serving.explain import UPPER_LAYERS
    from serving.predictor import load_predictor

    settings = load_settings(model_dir=model, host=host, port=port, backend=backend)
    _configure_logging(settings.log_level)
    overrides = environment_summary()
    if overrides:
        log.info("settings from the environment: %s", overrides)
    log.info("loading model folder %s (backend %s)", settings.model_dir, settings.backend)
    predictor = load_predictor(settings.model_dir, settings.backend, threads=settings.threads,
                               batch_size=settings.model_batch_size, explain_cut=UPPER_LAYERS)
    meta = predictor.meta
    log.info("loaded model %s version %s sha256 %s (%s, %s backend)", meta.name, meta.version, meta.sha256(),
             meta.kind, predictor.backend)
    if settings.auth_enabled:
        log.info("API keys required on /v1/* (%d configured)", len(settings.api_keys))
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.auth_enabled:
        log.warning("listening on %s without API keys; set COUNTERPOINT_API_KEYS to require them", settings.host)

    app = create_app(settings, predictor)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, workers=1, lifespan="on",
                            log_level=settings.log_level, access_log=settings.log_level == "debug",
                            timeout_keep_alive=15, server_header=False)
    uvicorn.Server(config).run()
