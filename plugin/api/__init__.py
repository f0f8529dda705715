"""HTTP surface: blueprints and error handling."""
from flask import Flask
from werkzeug.routing import IntegerConverter

from plugin.api import (
    audience_webhooks,  # noqa: F401  (adds /webhooks/audiences to webhooks.bp)
    audiences,
    campaigns,
    errors,
    health,
    host_webhooks,  # noqa: F401  (adds /webhooks/segment, clevertap, sendgrid)
    install,
    jobs,
    openapi,
    page_auth,
    pages,
    predictions,
    segment_destinations,
    segments,
    settings,
    unsubscribe,
    webhooks,
)
from plugin.ids import MAX_ID


class StoreId(IntegerConverter):
    """`<int:…>` ids beyond the store's integer range become 0, an id no row has, so the
    view answers its usual 404 instead of the database refusing the comparison (a 500)."""

    LARGEST = MAX_ID

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        return number if number <= self.LARGEST else 0


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = StoreId
    # /webhooks/default/events and /webhooks/events are both canonical; no redirects.
    app.url_map.redirect_defaults = False
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(predictions.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(install.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(page_auth.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(audiences.bp)
    app.register_blueprint(segments.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(segment_destinations.bp)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(pages.bp)
