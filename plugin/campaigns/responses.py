"""marshmallow schemas of what the campaign and destination endpoints answer (shape + OpenAPI)."""
from __future__ import annotations

from marshmallow import Schema, fields

from plugin.campaigns.schema import Tier

Count = fields.Integer
Reasons = fields.Dict(keys=fields.String(), values=fields.Integer(),
                      metadata={"description": "Skipped messages by reason."})


class CampaignOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prediction_id = fields.Integer()
    status = fields.String(metadata={"description": "active | paused | completed | archived"})
    audience = fields.Dict(allow_none=True)
    tiers = fields.List(fields.Nested(Tier))
    schedule = fields.Dict(metadata={"description": "As given (see the Schedule request schema)."})
    remessage_after_days = fields.Integer(allow_none=True)
    preset = fields.String(allow_none=True)
    next_run_at = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    warnings = fields.List(fields.String(), metadata={"description": "Sliding scale, connectors not enabled."})
    cancelled_messages = fields.Integer(metadata={"description": "On archive: messages not yet sent."})


class TierCounts(Schema):
    tier = fields.String()
    targeted = Count()
    already_messaged = Count()
    already_in_control = Count()


class RunOut(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer()
    run_key = fields.String()
    trigger = fields.String()
    status = fields.String()
    run_at = fields.String()
    model_id = fields.Integer(allow_none=True)
    window_days = fields.Integer()
    goal_event = fields.String()
    counts = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(TierCounts)))
    created = fields.Boolean(metadata={"description": "False when the run already existed for this key."})


class Group(Schema):
    users = Count()
    conversions = Count()
    rate = fields.Float(allow_none=True)
    expected_conversions = fields.Float()


class Uplift(Schema):
    difference = fields.Float()
    ci95 = fields.List(fields.Float())
    method = fields.String()
    significant = fields.Boolean()


class Outcomes(Schema):
    treatment = fields.Nested(Group)
    control = fields.Nested(Group)
    uplift = fields.Nested(Uplift, allow_none=True)
    expected_conversions = fields.Float()
    actual_conversions = Count()


class TierResult(Schema):
    tier = fields.String()
    targeted = Count()
    pending = Count()
    sent = Count()
    failed = Count()
    dead = Count()
    held = Count()
    delivered = Count(metadata={"description": "Messages the provider or host reported delivered."})
    opened = Count(metadata={"description": "Messages opened (a click counts as an open)."})
    clicked = Count()
    bounced = Count()
    complained = Count(metadata={"description": "Messages reported as spam."})
    unsubscribed = Count(metadata={"description": "Recipients who unsubscribed from the message."})
    converted = Count(allow_none=True, metadata={"description": "Treatment users who performed the goal "
                                                               "event in the window; null until it passed."})
    skipped = Reasons
    channels = fields.Dict(keys=fields.String(), values=fields.Dict())
    outcomes = fields.Nested(Outcomes, allow_none=True, metadata={"description": "Null until a window has passed."})


class ConnectorHealth(Schema):
    connector = fields.String()
    state = fields.String(metadata={"description": "closed | open | half_open"})
    failures = Count()
    open_until = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)


class ResultsOut(Schema):
    campaign_id = fields.Integer()
    runs = Count()
    runs_measured = Count()
    next_measurement_at = fields.Integer(allow_none=True)
    tiers = fields.List(fields.Nested(TierResult))
    connectors = fields.List(fields.Nested(ConnectorHealth))


class RenderedMessage(Schema):
    channel = fields.String()
    connector = fields.String()
    subject = fields.String()
    text = fields.String()
    html = fields.String()
    would_skip = fields.String(allow_none=True)


class RenderOut(Schema):
    user_id = fields.String()
    tier = fields.String()
    score = fields.Float(allow_none=True)
    category = fields.String(allow_none=True)
    offer = fields.Dict()
    in_control_group = fields.Boolean()
    messages = fields.List(fields.Nested(RenderedMessage))


class PresetOut(Schema):
    name = fields.String()
    description = fields.String()
    tiers = fields.List(fields.Nested(Tier))


class DestinationOut(Schema):
    id = fields.Integer()
    segment_id = fields.Integer()
    connector = fields.String()
    audience_id = fields.String()
    mode = fields.String()
    created_at = fields.String()
    last_synced_at = fields.String(allow_none=True)
    last_synced_version = fields.Integer(allow_none=True)


class SyncLogOut(Schema):
    id = fields.Integer()
    destination_id = fields.Integer()
    segment_version = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "ok | partial | failed"})
    added = Count()
    removed = Count()
    failed = Count()
    error = fields.String(allow_none=True)
    started_at = fields.String()
    finished_at = fields.String()
