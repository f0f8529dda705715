"""The app's shared resources as the web layer sees them: the store engine, the keyring, and the
connection a request's reads share. The store and crypto modules know nothing of Flask; this
module tells them where the current app and request are."""
from __future__ import annotations

from flask import Flask, current_app, g, has_app_context, has_request_context

from plugin import crypto, settings, store
from plugin.engagement import host_events
from plugin.ingest import writer
from plugin.store import timeouts


def init_app(app: Flask) -> None:
    engine = store.make_engine(app.config["LIKELY"]["database_url"])
    # Every statement run while serving a request has a deadline (503 query_timeout past it).
    timeouts.install(engine, app.config["LIKELY"]["statement_timeout_ms"], has_request_context)
    app.extensions["likely_engine"] = engine
    keyring = crypto.keyring_for(app.config["LIKELY"], app.instance_path)
    app.extensions["likely_keyring"] = keyring
    # Flask signs the page session cookie with this; older keys still verify during rotation.
    secret, *fallbacks = keyring.derived("likely flask session")
    app.config["SECRET_KEY"] = secret
    app.config["SECRET_KEY_FALLBACKS"] = fallbacks
    store.use_request_scope(_current_engine, _request_readers)
    crypto.use_app_keyring(_current_keyring)
    settings.use_app_settings(_current_settings)
    # Engagement the host reports (push opens, in-app clicks) updates the messages it concerns.
    writer.observe(host_events.NAMES, host_events.record_events)
    app.teardown_request(_close_readers)


def _current_engine():
    return current_app.extensions["likely_engine"]


def _current_settings() -> dict | None:
    return current_app.config["LIKELY"] if has_app_context() else None


def _current_keyring() -> crypto.Keyring | None:
    return current_app.extensions["likely_keyring"] if has_app_context() else None


def _request_readers() -> dict | None:
    return g.setdefault("likely_readers", {}) if has_request_context() else None


def _close_readers(_error: BaseException | None) -> None:
    store.close_readers(g.pop("likely_readers", {}))
