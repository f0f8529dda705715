"""Prediction pages: the HTML a marketer sees inside the host, and the JSON calls it makes.

`views` renders the pages, `actions` answers their JSON calls (CSRF-protected), `figures`
reads what they show from the store.
"""
from plugin.api.pages import actions  # noqa: F401  (adds the JSON calls to the blueprint)
from plugin.api.pages.views import bp

__all__ = ["bp"]
