"""Braze as the host: segment membership, score attributes and events on `/users/track`.

Segment membership, by default, is a custom array attribute (`likely_segments`) changed with
`{"add": [segment]}` / `{"remove": [segment]}` on `/users/track`
(https://www.braze.com/docs/api/objects_filters/user_attributes_object/): every Braze customer's
REST key can write it, and Braze's segment builder filters on it ("likely_segments includes
value …"). Braze keeps 25 values per array attribute unless the workspace raises the
limit, so a user in more likely segments than that loses the oldest. Cohort import (`POST /partners/{partner}/cohorts[/users]`, 1,000 ids per request)
needs a partner key and a data import key that only Braze technology partners are issued, so
it is kept behind `segment_membership: cohort` for a partnership.
Attributes and events (the likelihood score and category, `likely_category_changed`) go to
`/users/track` too, at most `track_objects_per_request` objects per request (attributes and
events together; 50 by default, which every Braze contract accepts, 75 where the contract
does). Braze answers 201 with "minor" errors that name the failed object by array and
index; those objects fail alone. Event properties are sent without null values.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from ..base import AudienceConnector, BatchInfo, Connector, url
from ..errors import ConfigurationError, FatalError
from ..model import HostEvent, Member, Result, UserAttributes
from ..net import provider_url
from ..settings import connector_schema, secret

TRACK_LIMIT = 75  # the most a Braze contract allows per /users/track request
TRACK_DEFAULT = 50  # what every contract accepts
COHORT_LIMIT = 1000
MEMBERSHIP = ["attributes", "cohort"]
# Braze's default: 3,000 /users/track requests per 3 seconds.
TRACK_RATE = 1000.0

# The REST endpoint of every Braze instance
# (https://braze.com/docs/user_guide/administer/personal/sdk_endpoints/).
HOSTS = [*(f"rest.iad-0{n}.braze.com" for n in range(1, 9)), "rest.us-10.braze.com",
         "rest.fra-01.braze.eu", "rest.fra-02.braze.eu", "rest.au-01.braze.com", "rest.id-01.braze.com"]
ENDPOINT = provider_url(HOSTS, default="https://rest.iad-01.braze.com",
                        title="REST endpoint of your cluster (e.g. https://rest.fra-01.braze.eu)")
API_KEY = secret({"type": "string", "minLength": 1, "title": "REST API key (users.track)"})
TRACK_OBJECTS = {"type": "integer", "minimum": 1, "maximum": TRACK_LIMIT, "default": TRACK_DEFAULT,
                 "title": "Objects per /users/track request (75 only where your Braze contract allows it)"}


class BrazeUsersTrack(Connector):
    """`/users/track` with per-object results; shared by the host and the in-app connectors."""

    default_rate_limit = TRACK_RATE

    @property
    def track_limit(self) -> int:
        return int(self.settings.get("track_objects_per_request") or TRACK_DEFAULT)

    def _track_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['api_key']}",
                "Content-Type": "application/json"}

    def check(self) -> None:
        # An empty request: Braze answers 401 for a bad key and something else for a good one.
        self._check_call("POST", url(self.settings["rest_endpoint"], "/users/track"),
                         headers=self._track_headers(), data=json.dumps({"attributes": []}))

    def track(self, objects: list[tuple[str, str, dict]]) -> list[Result]:
        """Post (key, "attributes"|"events", object) triples; one Result per key."""
        body: dict[str, list] = {}
        position: dict[tuple[str, int], str] = {}
        for key, array, obj in objects:
            position[(array, len(body.setdefault(array, [])))] = key
            body[array].append(obj)
        response = self.request("POST", url(self.settings["rest_endpoint"], "/users/track"),
                                headers=self._track_headers(), data=json.dumps(body))
        self.raise_for_status(response)
        answer = response.json() if response.content else {}
        failed: dict[str, str] = {}
        for error in answer.get("errors") or []:
            key = position.get((error.get("input_array"), error.get("index")))
            if key is None:
                raise FatalError(self.redact(f"braze: unattributed error: {error.get('type')}"))
            failed.setdefault(key, self.redact(f"braze: {error.get('type')}"))
        return [Result.failed(key, failed[key]) if key in failed else Result.sent(key)
                for key, _, _ in objects]

    def error_detail(self, response) -> str:
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            message = None
        return self.redact(str(message)[:300]) if message else super().error_detail(response)


def braze_time(when: datetime | None, now: float) -> str:
    moment = when or datetime.fromtimestamp(now, tz=timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


class BrazeHost(BrazeUsersTrack, AudienceConnector):
    name = "braze"
    channel = "host"
    batch_size = COHORT_LIMIT
    settings_schema = connector_schema("Braze (host)", {
        "rest_endpoint": ENDPOINT,
        "api_key": API_KEY,
        "segment_membership": {"enum": MEMBERSHIP, "default": "attributes",
                               "title": "Segment membership as a custom attribute (every customer) or "
                                        "cohort import (Braze technology partners only)"},
        "segment_attribute": {"type": "string", "minLength": 1, "maxLength": 255, "default": "likely_segments",
                              "title": "Custom array attribute holding the user's likely segments"},
        "track_objects_per_request": TRACK_OBJECTS,
        "partner_name": {"type": "string", "minLength": 1, "default": "likely",
                         "title": "Partner name in the cohort import URLs (partners only)"},
        "partner_api_key": secret({"type": "string",
                                   "title": "Partner API key (cohort import; Braze partners only)"}),
        "client_secret": secret({"type": "string",
                                 "title": "Data import key (cohort import; Braze partners only)"}),
    }, required=["rest_endpoint", "api_key"])

    @property
    def uses_cohorts(self) -> bool:
        return self.settings["segment_membership"] == "cohort"

    def add(self, audience_id: str, members: Sequence[Member]) -> list[Result]:
        if self.uses_cohorts:
            return super().add(audience_id, members)
        return self.deliver(members, lambda batch, info: self._membership(audience_id, batch, "add"),
                            batch_size=self.track_limit)

    def remove(self, audience_id: str, members: Sequence[Member]) -> list[Result]:
        if self.uses_cohorts:
            return super().remove(audience_id, members)
        return self.deliver(members, lambda batch, info: self._membership(audience_id, batch, "remove"),
                            batch_size=self.track_limit)

    def _membership(self, segment: str, batch: list[Member], change: str) -> list[Result]:
        attribute = self.settings["segment_attribute"]
        return self.track([(m.key, "attributes", {"external_id": m.member_id, attribute: {change: [segment]}})
                           for m in batch])

    def _cohort_url(self, suffix: str = "") -> str:
        return url(self.settings["rest_endpoint"],
                   f"/partners/{self.settings['partner_name']}/cohorts{suffix}")

    def _cohort_auth(self) -> dict[str, Any]:
        if not (self.settings.get("partner_api_key") and self.settings.get("client_secret")):
            raise ConfigurationError("braze: cohort import needs partner_api_key and client_secret")
        return {"partner_api_key": self.settings.get("partner_api_key"),
                "client_secret": self.settings.get("client_secret")}

    def ensure_cohort(self, cohort_id: str, name: str, created_at: datetime | None = None) -> None:
        """Create or rename the cohort in Braze (idempotent on `cohort_id`); nothing to create
        when membership is an attribute."""
        if not self.uses_cohorts:
            return
        body = {**self._cohort_auth(), "cohort_id": cohort_id, "name": name,
                "created_at": braze_time(created_at, self.wall_clock())}
        self.raise_for_status(self.request("POST", self._cohort_url(), json=body))

    def add_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        return self._cohort_changes(audience_id, batch, remove=False)

    def remove_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        return self._cohort_changes(audience_id, batch, remove=True)

    def _cohort_changes(self, cohort_id: str, batch: list[Member], remove: bool) -> list[Result]:
        change: dict[str, Any] = {"user_ids": [m.member_id for m in batch]}
        if remove:
            change["should_remove"] = True
        body = {**self._cohort_auth(), "cohort_id": cohort_id, "cohort_changes": [change]}
        self.raise_for_status(self.request("POST", self._cohort_url("/users"), json=body))
        return [Result.sent(m.key) for m in batch]

    def update_users(self, attributes: Sequence[UserAttributes] = (),
                     events: Sequence[HostEvent] = ()) -> list[Result]:
        """Write score/category attributes and change events, `track_objects_per_request` at a time."""
        return self.deliver([*attributes, *events], self._track_batch, batch_size=self.track_limit)

    def _track_batch(self, batch: list, info: BatchInfo) -> list[Result]:
        objects = []
        for item in batch:
            if isinstance(item, UserAttributes):
                objects.append((item.key, "attributes", {"external_id": item.user_id, **item.attributes}))
            else:
                objects.append((item.key, "events", {
                    "external_id": item.user_id, "name": item.name,
                    "time": braze_time(item.time, self.wall_clock()),
                    "properties": {k: v for k, v in item.properties.items() if v is not None}}))
        return self.track(objects)
