"""The compiled query agrees with a plain Python reading of the rules, on random data and trees.

The reference below is written from the README's rules, not from the compiler: type-strict
comparisons, missing values match no comparison, `not` is the complement over the workspace's
users, scores only for scored users, reachability as documented.
"""
from __future__ import annotations

import math
import operator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from plugin import workspaces
from plugin.audiences.compiler import compile_audience
from plugin.audiences.preview import preview
from plugin.audiences.schema import parse_tree
from tests.plugin.audience_data import NOW, add_events, add_prediction, add_users, clear, default_id, set_scores

DAY = 86_400
KEYS = ["country", "age", "plan", "tags", "email", "phone", "push_tokens", "email_consent", "push_consent",
        "in_app_consent", "ads_consent", "unsubscribed", "a.b"]
SCORES = [0.0, 0.5, 12.5, 49.99, 50.0, 59.5, 59.99, 60.0, 74.0, 75.0, 90.0, 99.5, 99.99, 100.0]

# --- the reference -------------------------------------------------------------------------------


def kind(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def same(a, b) -> bool:
    return kind(a) == kind(b) and kind(a) in ("boolean", "number", "string") and a == b


ORDER = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


def attribute_matches(attrs: dict, name: str, op: str, value) -> bool:
    a = attrs.get(name)
    scalar = kind(a) in ("boolean", "number", "string")
    if op == "eq":
        return same(a, value)
    if op == "ne":
        return scalar and not same(a, value)
    if op in ORDER:
        return kind(a) == kind(value) and kind(a) in ("number", "string") and ORDER[op](a, value)
    if op == "in":
        return any(same(a, v) for v in value)
    if op == "not_in":
        return scalar and not any(same(a, v) for v in value)
    if op == "exists":
        return a is not None
    if op == "not_exists":
        return a is None
    assert op == "contains"
    if kind(a) == "string" and isinstance(value, str):
        return value in a
    return kind(a) == "array" and any(same(x, value) for x in a)


def reachable(attrs: dict, channel: str) -> bool:
    def text(k):
        return isinstance(attrs.get(k), str) and attrs[k] != ""
    subscribed = attrs.get("unsubscribed") is not True
    if channel == "email":
        return text("email") and attrs.get("email_consent") is not False and subscribed
    if channel == "push":
        tokens = attrs.get("push_tokens")
        return isinstance(tokens, list) and len(tokens) > 0 and attrs.get("push_consent") is not False and subscribed
    if channel == "in_app":
        return attrs.get("in_app_consent") is not False and subscribed
    return (text("email") or text("phone")) and attrs.get("ads_consent") is not False and subscribed


def evaluate(node: dict, world: dict) -> set[int]:
    people = world["users"]
    if "all" in node:
        out = set(people)
        for child in node["all"]:
            out &= evaluate(child, world)
        return out
    if "any" in node:
        return set().union(*(evaluate(child, world) for child in node["any"]))
    if "not" in node:
        return set(people) - evaluate(node["not"], world)
    f = node["filter"]
    if f == "event_likelihood_score":
        scored = world["scores"].get(node["prediction"], {})
        return {u for u, (s, _) in scored.items()
                if all(ORDER[op](s, node[op]) for op in ORDER if op in node)}
    if f == "event_likelihood_category":
        scored = world["scores"].get(node["prediction"], {})
        return {u for u, (_, c) in scored.items() if c in node["in"]}
    if f in ("performed", "not_performed"):
        since = -math.inf if node.get("within_days") is None else NOW - node["within_days"] * DAY
        counts: dict[int, int] = {}
        for uid, name, ts in world["events"]:
            if name == node["event"] and since <= ts <= NOW:
                counts[uid] = counts.get(uid, 0) + 1
        did = {u for u in people if counts.get(u, 0) >= node.get("min_count", 1)}
        return did if f == "performed" else set(people) - did
    if f == "attribute":
        return {u for u, attrs in people.items()
                if attribute_matches(attrs, node["name"], node["op"], node.get("value"))}
    return {u for u, attrs in people.items() if reachable(attrs, node["channel"])}

# --- generated data and trees --------------------------------------------------------------------


def uniform(*strategies):
    """Pick a branch uniformly: one_of() leans hard on its first branches."""
    return st.sampled_from(strategies).flatmap(lambda chosen: chosen)


texts = uniform(st.sampled_from(["US", "FR", "", "us", "a.b", "é", "Z", "a@x.io"]),
                  st.text(alphabet="abAZé ", max_size=3))
numbers = uniform(st.sampled_from([0, 1, 1.0, 2.5, -3, 18, 18.0, 65]),
                    st.integers(-100, 100), st.floats(-100, 100, allow_nan=False, allow_infinity=False))
booleans = st.sampled_from([True, False])
scalars = uniform(texts, numbers, booleans)
values = uniform(scalars, st.none(), st.lists(scalars, max_size=3))
# Per attribute, mostly the values it really holds (so filters hit), sometimes anything at all.
TYPICAL = {
    "country": st.sampled_from(["US", "FR", "us", "DE", "é"]),
    "age": uniform(st.integers(10, 80), st.sampled_from([18, 18.0, 65.5])),
    "plan": st.sampled_from(["free", "pro", "Pro", "a.b"]),
    "tags": st.lists(st.sampled_from(["vip", "a", 1, 1.0, True, "B"]), max_size=3),
    "email": st.sampled_from(["a@x.io", "", "b@y.io"]),
    "phone": st.sampled_from(["+33 1 23 45", ""]),
    "push_tokens": st.lists(st.sampled_from(["t1", "t2"]), max_size=2),
    "a.b": uniform(st.sampled_from(["vip", 1, True]), st.lists(st.sampled_from(["vip", 1, True]), max_size=2)),
}
for flag in ("email_consent", "push_consent", "in_app_consent", "ads_consent", "unsubscribed"):
    TYPICAL[flag] = booleans


def typical(key):
    return uniform(TYPICAL[key], TYPICAL[key], values)


def scalar_for(key):
    return uniform(TYPICAL[key].map(lambda v: v[0] if isinstance(v, list) and v else v)
                   .filter(lambda v: not isinstance(v, list)), scalars)


attributes = st.lists(st.sampled_from(KEYS), unique=True, max_size=8).flatmap(
    lambda keys: st.fixed_dictionaries({k: typical(k) for k in keys}))


@st.composite
def worlds(draw):
    people = draw(st.lists(attributes, min_size=1, max_size=14))
    scored = {p: draw(st.dictionaries(st.integers(0, len(people) - 1),
                                      st.tuples(st.sampled_from(SCORES), st.sampled_from(["Low", "Medium", "High"])),
                                      max_size=len(people))) for p in (0, 1)}
    happenings = draw(st.lists(st.tuples(st.integers(0, len(people) - 1), st.sampled_from(["purchase", "view"]),
                                         uniform(st.sampled_from([0, -DAY, -7 * DAY, -30 * DAY, -30 * DAY - 1, DAY]),
                                                 st.integers(-40 * DAY, 2 * DAY))),
                              max_size=25))
    return people, scored, happenings


def _score_range(prediction, low, high):
    """A non-empty range from optional (op, bound) pairs."""
    (low_op, lo), (high_op, hi) = low, high
    if low_op is None and high_op is None:
        low_op = "gte"
    if low_op and high_op and lo > hi:
        lo, hi = hi, lo
    if low_op and high_op and lo == hi:
        low_op, high_op = "gte", "lte"
    leaf = {"filter": "event_likelihood_score", "prediction": prediction}
    if low_op:
        leaf[low_op] = lo
    if high_op:
        leaf[high_op] = hi
    return leaf


def score_leaf(prediction):
    bound = st.sampled_from([0, 0.5, 30, 50, 59.5, 59.99, 60, 75, 99.5, 100])
    return st.builds(_score_range, st.just(prediction),
                     st.tuples(st.sampled_from([None, "gt", "gte"]), bound),
                     st.tuples(st.sampled_from([None, "lt", "lte"]), bound))


def _valid(leaf) -> bool:
    try:
        parse_tree(leaf)
        return True
    except ValidationError:
        return False


def leaves(predictions):
    prediction = st.sampled_from(predictions)
    ops = st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "exists", "not_exists", "contains"])
    channels = st.sampled_from(["email", "push", "in_app", "ads"])
    key = st.sampled_from(KEYS)
    simple = key.flatmap(lambda name: st.builds(
        lambda op, value: {"filter": "attribute", "name": name, "op": op,
                           **({} if op.endswith("exists") else {"value": value})}, ops, scalar_for(name)))
    listed = key.flatmap(lambda name: st.builds(
        lambda op, vs: {"filter": "attribute", "name": name, "op": op, "value": vs},
        st.sampled_from(["in", "not_in"]), st.lists(scalar_for(name), min_size=1, max_size=4)))
    performed = st.builds(lambda f, e, k, d: {"filter": f, "event": e, "min_count": k, "within_days": d},
                          st.sampled_from(["performed", "not_performed"]), st.sampled_from(["purchase", "view", "never"]),
                          st.integers(1, 3), st.sampled_from([None, 1, 7, 30]))
    category = st.builds(lambda p, cs: {"filter": "event_likelihood_category", "prediction": p, "in": cs},
                         prediction, st.lists(st.sampled_from(["Low", "Medium", "High"]), min_size=1, max_size=2))
    reach = st.builds(lambda c: {"filter": "reachable", "channel": c}, channels)
    return uniform(prediction.flatmap(score_leaf), category, simple.filter(_valid), simple.filter(_valid),
                   listed, performed, reach)


def trees(predictions):
    return st.recursive(leaves(predictions), lambda kids: uniform(
        st.builds(lambda xs: {"all": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, kids)), max_leaves=6)


def load_world(engine, people, scored, happenings):
    """Write the world into `default`, and a decoy copy into another workspace."""
    clear(engine)
    default = default_id(engine)
    other = workspaces.ensure(engine, "other").id
    world = {"users": {}, "scores": {}, "events": []}
    ids = add_users(engine, default, {f"u{i}": attrs for i, attrs in enumerate(people)})
    decoys = add_users(engine, other, {f"u{i}": attrs for i, attrs in enumerate(people)})
    index = [ids[f"u{i}"] for i in range(len(people))]
    world["users"] = {index[i]: attrs for i, attrs in enumerate(people)}
    predictions = []
    for p, by_index in scored.items():
        pid, _ = add_prediction(engine, default, name=f"p{p}")
        set_scores(engine, default, pid, {index[i]: s for i, (s, _) in by_index.items()},
                   {index[i]: c for i, (_, c) in by_index.items()})
        world["scores"][pid] = {index[i]: v for i, v in by_index.items()}
        predictions.append(pid)
    decoy_pid, _ = add_prediction(engine, other, name="decoy")
    set_scores(engine, other, decoy_pid, {uid: 99.0 for uid in decoys.values()})
    world["events"] = [(index[i], name, NOW + offset) for i, name, offset in happenings]
    add_events(engine, default, world["events"])
    add_events(engine, other, [(decoys[f"u{i}"], name, NOW + offset) for i, name, offset in happenings])
    return default, predictions, world


PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much, HealthCheck.data_too_large])


def check(engine, workspace_id, tree, world):
    expected = evaluate(parse_tree(tree), world)
    with engine.connect() as conn:
        got = set(conn.execute(compile_audience(tree, workspace_id, NOW)).scalars())
        figures = preview(conn, workspace_id, parse_tree(tree), NOW)
    assert got == expected, tree
    assert figures["size"] == len(expected), tree
    for p in figures["predictions"]:  # expected conversions: the members' scores / 100
        scored = world["scores"][p["prediction_id"]]
        reference = sum(scored[u][0] for u in expected if u in scored) / 100
        assert abs(p["expected_conversions"] - reference) < 0.006, (tree, p, reference)


@PROPERTY
@given(data=st.data(), generated=worlds())
def test_every_leaf_and_its_negation_match_the_reference(engine, data, generated):
    default, predictions, world = load_world(engine, *generated)
    for leaf in data.draw(st.lists(leaves(predictions), min_size=8, max_size=12), label="leaves"):
        check(engine, default, leaf, world)
        check(engine, default, {"not": leaf}, world)


@PROPERTY
@given(data=st.data(), generated=worlds())
def test_random_trees_match_the_reference(engine, data, generated):
    default, predictions, world = load_world(engine, *generated)
    for tree in data.draw(st.lists(trees(predictions), min_size=3, max_size=6), label="trees"):
        check(engine, default, tree, world)


def test_reference_rules_sanity():
    """The reference itself encodes the documented edge cases (so the property test tests them)."""
    assert not attribute_matches({}, "country", "ne", "US")
    assert attribute_matches({"country": "FR"}, "country", "ne", "US")
    assert not attribute_matches({"age": "18"}, "age", "eq", 18)
    assert not attribute_matches({"flag": True}, "flag", "eq", 1)
    assert attribute_matches({"age": 18.0}, "age", "eq", 18)
    assert attribute_matches({"tags": ["a", 1]}, "tags", "contains", 1)
    assert not attribute_matches({"tags": "a1"}, "tags", "contains", 1)
    assert reachable({"email": "a@x.io"}, "email") and not reachable({"email": "a@x.io", "unsubscribed": True}, "email")


@settings(PROPERTY, max_examples=25)
@given(data=st.data(), scored=st.lists(st.sampled_from(SCORES), min_size=1, max_size=30))
def test_score_ranges_match_the_reference(engine, data, scored):
    """The slider path (cached distribution plus exact edge probes) on scores that sit on bucket edges."""
    people = [{} for _ in scored]
    default, predictions, world = load_world(engine, people, {0: {i: (s, "Low") for i, s in enumerate(scored)}, 1: {}}, [])
    for leaf in data.draw(st.lists(score_leaf(predictions[0]), min_size=10, max_size=20), label="ranges"):
        check(engine, default, leaf, world)
