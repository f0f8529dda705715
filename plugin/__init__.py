"""likely: event-likelihood predictions, audiences and tiered campaigns for a messaging host."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

import connectors.net
from plugin import settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app. Settings come from the environment, or wholly from `test_config`.

    Nothing here starts background work: the scheduler is its own process.
    """
    app = Flask(__name__, instance_relative_config=True, instance_path=settings.default_instance_path())
    if test_config is None:
        app.config["LIKELY"] = settings.load(app.instance_path)
    else:
        app.config["LIKELY"] = settings.validate(dict(test_config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["LIKELY"]["max_body_bytes"]
    app.json.sort_keys = False
    # Process-wide, like the environment it comes from: every connector built here obeys it.
    connectors.net.configure(app.config["LIKELY"]["outbound_allowed_hosts"])

    from plugin import api
    from plugin.api import context, observability
    context.init_app(app)  # the store's engine and the secrets keyring
    observability.init_app(app)
    api.init_app(app)  # blueprints and error handlers
    return app
