"""The tiered campaign definition: marshmallow schemas that validate requests and shape answers.

A campaign maps bands of one prediction to tiers. A band is a set of likelihood categories or
a score range [min, max) (max 100 includes 100). Each tier sends on one or more channels,
each through a named connector with its own template, and carries an offer and a
control-group share.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from plugin.audiences.schema import StrictNumber
from plugin.errors import CHOICE_ERROR
from plugin.ids import Id

CHANNELS = ("email", "push", "in_app", "ads", "webhook")
MESSAGE_CHANNELS = ("email", "push", "in_app", "webhook")
SCHEDULES = ("once", "at", "recurring")
PERIODS = {"day": 86_400, "week": 7 * 86_400}
STATUSES = ("active", "paused", "completed", "archived")
MAX_TIERS = 10


class Strict(Schema):
    class Meta:
        unknown = RAISE


class ScoreRange(Strict):
    min = StrictNumber(load_default=0, validate=validate.Range(0, 100))
    max = StrictNumber(load_default=100, validate=validate.Range(0, 100))

    @validates_schema
    def not_empty(self, data: dict, **kwargs) -> None:
        if data["min"] >= data["max"]:
            raise ValidationError("The range is empty: min must be below max.", "max")


class Band(Strict):
    categories = fields.List(fields.String(validate=validate.Length(1, 64)),
                             validate=validate.Length(1, 10))
    score = fields.Nested(ScoreRange)

    @validates_schema
    def one_kind(self, data: dict, **kwargs) -> None:
        if ("categories" in data) == ("score" in data):
            raise ValidationError("Give either categories or a score range.", "_schema")
        if "categories" in data and len(set(data["categories"])) != len(data["categories"]):
            raise ValidationError("Categories are listed twice.", "categories")


class Offer(Strict):
    discount_percent = StrictNumber(load_default=0, validate=validate.Range(0, 100))
    code = fields.String(validate=validate.Length(1, 64))
    description = fields.String(validate=validate.Length(0, 500))


class TemplateFields(Strict):
    subject = fields.String(validate=validate.Length(0, 50_000))
    text = fields.String(validate=validate.Length(0, 50_000))
    html = fields.String(validate=validate.Length(0, 50_000))


class ChannelAction(Strict):
    """One channel a tier sends on: the connector that delivers it and what it sends."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS, error=CHOICE_ERROR))
    connector = fields.String(required=True, validate=validate.Length(1, 64))
    template = fields.Nested(TemplateFields, load_default=dict)
    audience_id = fields.String(validate=validate.Length(1, 255),
                                metadata={"description": "Ads: the provider audience to add users to."})

    @validates_schema
    def needs(self, data: dict, **kwargs) -> None:
        template = data.get("template") or {}
        channel = data["channel"]
        if channel == "ads":
            if not data.get("audience_id"):
                raise ValidationError("An ads channel needs the provider's audience_id.", "audience_id")
            if any(template.values()):
                raise ValidationError("An ads channel adds users to an audience; it has no template.",
                                      "template")
        if channel == "email" and not (template.get("subject") and (template.get("text") or template.get("html"))):
            raise ValidationError("An email needs a subject and a text or html body.", "template")
        if channel in ("push", "in_app") and not (template.get("text") or template.get("html")):
            raise ValidationError("A push or in-app message needs a text body.", "template")


class Tier(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 64))
    band = fields.Nested(Band, required=True)
    channels = fields.List(fields.Nested(ChannelAction), required=True, validate=validate.Length(1, 5))
    offer = fields.Nested(Offer, load_default=lambda: {"discount_percent": 0})
    control_share = StrictNumber(load_default=0, validate=validate.Range(0, 1, max_inclusive=False))

    @pre_load
    def one_channel_shorthand(self, data, **kwargs):
        """`channel`, `connector`, `template` at tier level mean a single channel."""
        if isinstance(data, dict) and "channel" in data and "channels" not in data:
            data = dict(data)
            action = {k: data.pop(k) for k in ("channel", "connector", "template", "audience_id")
                      if k in data}
            data["channels"] = [action]
        return data

    @validates_schema
    def distinct_channels(self, data: dict, **kwargs) -> None:
        channels = [c["channel"] for c in data.get("channels", [])]
        if len(set(channels)) != len(channels):
            raise ValidationError("A tier sends at most once per channel.", "channels")


class Schedule(Strict):
    type = fields.String(load_default="once", validate=validate.OneOf(SCHEDULES))
    at = fields.AwareDateTime(default_timezone=None)
    every = fields.String(validate=validate.OneOf(tuple(PERIODS)))
    start_at = fields.AwareDateTime()
    local_time = fields.String(validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                                        error="Use HH:MM (24-hour clock)."),
                               metadata={"description": "Send at this time on each user's own clock "
                                                        "(their time_zone attribute), from the run on."})

    @validates_schema
    def complete(self, data: dict, **kwargs) -> None:
        if data["type"] == "at" and "at" not in data:
            raise ValidationError("A scheduled send needs `at` (ISO 8601 with a zone).", "at")
        if data["type"] == "recurring" and "every" not in data:
            raise ValidationError("A recurring campaign needs `every`: day or week.", "every")


class CampaignInput(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 255))
    prediction_id = Id(required=True)
    audience = fields.Dict(allow_none=True, load_default=None,
                           metadata={"description": "Optional audience tree layered on the bands."})
    tiers = fields.List(fields.Nested(Tier), required=True, validate=validate.Length(1, MAX_TIERS))
    schedule = fields.Nested(Schedule, load_default=lambda: {"type": "once"})
    remessage_after_days = fields.Integer(strict=True, allow_none=True, load_default=None,
                                          validate=validate.Range(0, 365))
    status = fields.String(load_default="paused", validate=validate.OneOf(("active", "paused")),
                           metadata={"description": "paused (the default) sends nothing until activated"})
    preset = fields.String(allow_none=True, load_default=None)


class CampaignPatch(Strict):
    """Fields a PATCH may change; tiers and schedule are revalidated as a whole."""

    name = fields.String(validate=validate.Length(1, 255))
    audience = fields.Dict(allow_none=True)
    tiers = fields.List(fields.Nested(Tier), validate=validate.Length(1, MAX_TIERS))
    schedule = fields.Nested(Schedule)
    remessage_after_days = fields.Integer(strict=True, allow_none=True, validate=validate.Range(0, 365))
    status = fields.String(validate=validate.OneOf(("active", "paused")))


class PresetRequest(Schema):
    """Create from a preset: the preset's tiers, with connectors and the ads audience filled in."""

    class Meta:
        unknown = EXCLUDE

    preset = fields.String(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 255))
    prediction_id = Id(required=True)
    connectors = fields.Dict(keys=fields.String(validate=validate.OneOf(CHANNELS, error=CHOICE_ERROR)),
                             values=fields.String(validate=validate.Length(1, 64)), load_default=dict)
    ads_audience_id = fields.String(validate=validate.Length(1, 255), allow_none=True, load_default=None)
    control_share = StrictNumber(validate=validate.Range(0, 1, max_inclusive=False))


class RenderRequest(Strict):
    user_id = fields.String(required=True, validate=validate.Length(1, 255),
                            metadata={"description": "The host's user id."})
    tier = fields.String(validate=validate.Length(1, 64),
                         metadata={"description": "Render this tier instead of the user's own."})
