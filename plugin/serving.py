"""Running the app under gunicorn from the `likely` command."""
from __future__ import annotations

import glob
import os
import socket
import tempfile

from gunicorn.app.base import BaseApplication

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from plugin import create_app
        from plugin.observability import logs
        app = create_app()
        logs.configure_from_settings(app.config["LIKELY"])
        return app


def _child_exit(server, worker) -> None:
    from plugin.observability.metrics import mark_process_dead
    mark_process_dead(worker.pid)


def prepare_multiprocess_metrics() -> str:
    """Point prometheus_client at a directory shared by the workers, before it is imported.

    Uses PROMETHEUS_MULTIPROC_DIR when set (clearing its *.db files, as a fresh start needs),
    otherwise a new temporary directory.
    """
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    else:
        path = tempfile.mkdtemp(prefix="likely-metrics-")
        os.environ[MULTIPROC_ENV] = path
    return path


def _logconfig(level: str) -> dict:
    """gunicorn's own lines (start, worker boot/exit) through the same JSON handler as the app's.

    The handler carries the name `logs.configure` uses, so a worker configuring its logs
    replaces it instead of adding a second one.
    """
    from plugin.observability.logs import HANDLER_NAME
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"context": {"()": "plugin.observability.logs.ContextFilter"},
                    "redact": {"()": "plugin.observability.logs.RedactingFilter"}},
        "formatters": {"json": {"()": "plugin.observability.logs.JsonLogFormatter"}},
        "handlers": {HANDLER_NAME: {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                    "formatter": "json", "filters": ["context", "redact"]}},
        "root": {"level": level, "handlers": [HANDLER_NAME]},
        "loggers": {"gunicorn.error": {"level": level, "handlers": [], "propagate": True},
                    # The app logs each request itself, with its request id; gunicorn's line would
                    # be a second, poorer copy.
                    "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False}},
    }


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port (gunicorn's bind would then fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: SO_REUSEADDR, so a closed connection in TIME_WAIT does not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def run_gunicorn(host: str, port: int, workers: int, log_level: str = "INFO") -> None:
    """Serve with `workers` sync workers. Access lines come from the app (JSON, with request id)."""
    _Gunicorn({"bind": f"{host}:{port}", "workers": workers, "accesslog": None, "logconfig_dict": _logconfig(log_level),
               "timeout": 60, "graceful_timeout": 30, "child_exit": _child_exit}).run()
