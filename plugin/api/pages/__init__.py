"""Prediction pages: the HTML a marketer sees inside the host, and the JSON calls it makes.

`views` renders the pages, `actions` answers their JSON calls (CSRF-protected), `creation` is
the form that creates a prediction, `figures` reads what they show from the store.
"""
from plugin.api.pages import actions, campaigns_page, creation, segments_page  # noqa: F401  (add the JSON calls and the form to the blueprint)
from plugin.api.pages.views import bp

__all__ = ["bp"]
