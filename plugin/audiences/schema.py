"""The audience definition: a boolean tree of filters, validated into a normalised copy.

Errors are keyed by the node's path in the tree (`all[2].any[0].op`), so a marketer or
the host's builder can point at the exact condition that is wrong.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from plugin.errors import CHOICE_ERROR
from plugin.ids import Id, is_int64
from plugin.ingest.schemas import ATTRIBUTE_NAME

MAX_DEPTH = 8
MAX_LEAVES = 100
MAX_LIST_VALUES = 1000
# The audience budget: each filter weighs 1 and each value listed in it (`in`, `not_in`) 1 more.
# Compiling and running a tree costs about its weight, so the whole tree is held to it.
MAX_WEIGHT = 5_000
BRANCHES = ("all", "any")
CHANNELS = ("email", "push", "in_app", "ads")
ORDERING_OPS = ("lt", "lte", "gt", "gte")
ATTRIBUTE_OPS = ("eq", "ne", *ORDERING_OPS, "in", "not_in", "exists", "not_exists", "contains")
ROOT = "$"


class StrictNumber(fields.Number):
    """A JSON number: unlike fields.Float, "60" and true are type errors, not 60 and 1."""

    num_type = float
    default_error_messages = {"invalid": "Not a number.", "too_large": "Not a finite number."}

    def _validated(self, value: Any):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if not math.isfinite(value):
            raise self.make_error("too_large")
        return value


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value))


BIG_INTEGER = "Whole numbers in a filter lie between -2^63 and 2^63 - 1 (the stores' integers)."


def _scalar_problem(value: Any, expected: str) -> str | None:
    """Why `value` cannot be compared with an attribute, or None."""
    if not _is_scalar(value):
        return expected
    return None if is_int64(value) else BIG_INTEGER


class _Leaf(Schema):
    class Meta:
        unknown = RAISE

    filter = fields.String(required=True)


class _PredictionLeaf(_Leaf):
    prediction = Id(required=True)


class ScoreFilter(_PredictionLeaf):
    """Users whose Event Likelihood Score for `prediction` lies in the range."""

    gt = StrictNumber(validate=validate.Range(0, 100))
    gte = StrictNumber(validate=validate.Range(0, 100))
    lt = StrictNumber(validate=validate.Range(0, 100))
    lte = StrictNumber(validate=validate.Range(0, 100))

    @validates_schema
    def check_range(self, data: dict, **kwargs) -> None:
        if not any(k in data for k in ORDERING_OPS):
            raise ValidationError("Give at least one of gt, gte, lt, lte.", ROOT)
        for a, b in (("gt", "gte"), ("lt", "lte")):
            if a in data and b in data:
                raise ValidationError(f"Give {a} or {b}, not both.", b)
        low = data.get("gt", data.get("gte"))
        high = data.get("lt", data.get("lte"))
        if low is not None and high is not None and (low > high or (low == high and ("gt" in data or "lt" in data))):
            raise ValidationError("The range is empty: the lower bound is above the upper one.", ROOT)


class CategoryFilter(_PredictionLeaf):
    """Users whose Event Likelihood Category for `prediction` is one of `in`."""

    in_ = fields.List(fields.String(validate=validate.Length(1, 64)), data_key="in", attribute="in",
                      required=True, validate=validate.Length(1, 50))


class AttributeFilter(_Leaf):
    """A comparison on one user attribute (type-aware; see the README for missing values)."""

    name = fields.String(required=True, validate=validate.Regexp(
        ATTRIBUTE_NAME, error="Attribute names start with a letter or _ and use letters, digits, _ . -"))
    op = fields.String(required=True, validate=validate.OneOf(ATTRIBUTE_OPS, error=CHOICE_ERROR))
    value = fields.Raw(allow_none=True)

    @validates_schema(skip_on_field_errors=True)
    def check_value(self, data: dict, **kwargs) -> None:
        op, value = data["op"], data.get("value")
        if op in ("exists", "not_exists"):
            if value is not None:
                raise ValidationError(f"{op} takes no value.", "value")
        elif op in ("in", "not_in"):
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
                raise ValidationError(f"{op} needs a list of 1 to {MAX_LIST_VALUES} values.", "value")
            bad = {i: [problem] for i, v in enumerate(value)
                   if (problem := _scalar_problem(v, "Not a string, number or boolean."))}
            if bad:
                raise ValidationError(bad, "value")
        elif op in ORDERING_OPS:
            problem = _scalar_problem(value, f"{op} compares with a number or a string.")
            if isinstance(value, bool) or problem:
                raise ValidationError(problem or f"{op} compares with a number or a string.", "value")
        elif problem := _scalar_problem(value, f"{op} needs a string, number or boolean value."):
            raise ValidationError(problem, "value")


class PerformedFilter(_Leaf):
    """Users who performed `event` at least `min_count` times in the last `within_days` (or ever)."""

    event = fields.String(required=True, validate=validate.Length(1, 255))
    min_count = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 1_000_000))
    within_days = fields.Integer(strict=True, load_default=None, allow_none=True,
                                 validate=validate.Range(1, 3650))


class ReachableFilter(_Leaf):
    """Users the channel can reach: an address or token, consent, not unsubscribed."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS, error=CHOICE_ERROR))


LEAVES: dict[str, type[Schema]] = {
    "event_likelihood_score": ScoreFilter,
    "event_likelihood_category": CategoryFilter,
    "attribute": AttributeFilter,
    "performed": PerformedFilter,
    "not_performed": PerformedFilter,
    "reachable": ReachableFilter,
}
PREDICTION_FILTERS = ("event_likelihood_score", "event_likelihood_category")
# One instance per filter: building a schema costs several times loading with it.
_LEAF_SCHEMAS: dict[str, Schema] = {name: schema() for name, schema in LEAVES.items()}


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _flatten(messages: Any, path: str, out: dict[str, list[str]]) -> None:
    """marshmallow's nested messages → {"all[0].in[1]": [...]}."""
    if isinstance(messages, dict):
        for key, inner in messages.items():
            _flatten(inner, path if key in (ROOT, "_schema") else _join(path, key), out)
    else:
        out.setdefault(path or ROOT, []).extend(messages if isinstance(messages, list) else [messages])


class _Parser:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.leaves = 0
        self.weight = 0

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path or ROOT, []).append(message)

    def node(self, value: Any, path: str, depth: int) -> dict | None:
        if depth > MAX_DEPTH:
            self.fail(path, f"Nested deeper than {MAX_DEPTH} levels.")
            return None
        if not isinstance(value, dict):
            self.fail(path, "Expected an object: {all: [...]}, {any: [...]}, {not: {...}} or a filter.")
            return None
        kinds = [k for k in (*BRANCHES, "not", "filter") if k in value]
        if len(kinds) != 1:
            self.fail(path, "A node is exactly one of all, any, not or a filter.")
            return None
        kind = kinds[0]
        if kind == "filter":
            return self.leaf(value, path)
        for extra in sorted(set(value) - {kind}):
            self.fail(_join(path, extra), "Unknown field.")
        inner = value[kind]
        if kind == "not":
            child = self.node(inner, _join(path, "not"), depth + 1)
            return None if child is None else {"not": child}
        here = _join(path, kind)
        if not isinstance(inner, list) or not inner:
            self.fail(here, f"{kind} needs a non-empty list of conditions.")
            return None
        if len(inner) > MAX_LEAVES:
            self.fail(here, f"At most {MAX_LEAVES} conditions.")
            return None
        children = [self.node(child, _join(here, i), depth + 1) for i, child in enumerate(inner)]
        return None if any(c is None for c in children) else {kind: children}

    def leaf(self, value: dict, path: str) -> dict | None:
        self.leaves += 1
        self.weight += 1 + sum(len(v) for k, v in value.items() if k in ("value", "in") and isinstance(v, list))
        if self.weight > MAX_WEIGHT:
            return None  # refused as a whole below; validating the rest would only cost more
        name = value.get("filter")
        schema = _LEAF_SCHEMAS.get(name) if isinstance(name, str) else None
        if schema is None:
            self.fail(_join(path, "filter"), f"Unknown filter; use one of {', '.join(LEAVES)}.")
            return None
        try:
            return schema.load(value)
        except ValidationError as error:
            _flatten(error.messages, path, self.errors)
            return None


def parse_tree(tree: Any) -> dict:
    """Validate an audience tree; return its normalised copy or raise ValidationError({path: [msg]})."""
    parser = _Parser()
    result = parser.node(tree, "", 1)
    if parser.leaves > MAX_LEAVES:
        parser.fail(ROOT, f"At most {MAX_LEAVES} filters in one definition; found {parser.leaves}.")
    if parser.weight > MAX_WEIGHT:
        parser.errors = {ROOT: [
            f"The definition is over the audience budget of {MAX_WEIGHT}: each filter counts 1 and "
            f"each listed value 1 more, and it counts {parser.weight}."]}
    if parser.errors:
        raise ValidationError(parser.errors)
    return result


def walk(node: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every leaf of a parsed tree with its path."""
    if "filter" in node:
        yield path, node
    elif "not" in node:
        yield from walk(node["not"], _join(path, "not"))
    else:
        kind = "all" if "all" in node else "any"
        for i, child in enumerate(node[kind]):
            yield from walk(child, _join(_join(path, kind), i))


def referenced_predictions(node: dict) -> dict[int, list[str]]:
    """Prediction ids a parsed tree refers to, each with the paths of its filters, in order."""
    found: dict[int, list[str]] = {}
    for path, leaf in walk(node):
        if leaf["filter"] in PREDICTION_FILTERS:
            found.setdefault(leaf["prediction"], []).append(_join(path, "prediction"))
    return found


class AudienceDefinition(fields.Field):
    """A marshmallow field holding an audience tree; loads to the normalised tree."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "An audience: {all: [...]}, {any: [...]}, {not: {...}} or a filter "
                           "(event_likelihood_score, event_likelihood_category, attribute, performed, "
                           "not_performed, reachable). See the Audiences section of the README.")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        return parse_tree(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class AudienceTreeSchema(Schema):
    """Validates a bare tree (`AudienceTreeSchema().load(tree)`), e.g. a prediction's eligible audience."""

    def load(self, data: Any, **kwargs: Any) -> dict:  # the tree itself is the payload
        return parse_tree(data)
