"""Issue 13 point 2: templates that would eat gigabytes are refused before they are built.

Each attack is the red team's own template, replayed against the real app: saved through
`POST /v1/campaigns`, previewed through `POST /v1/campaigns/{id}/render`, and delivered by the
outbox worker. The memory a render may use is measured with tracemalloc (no wall clock): on
the code before the fix `[('a'*100000)] * 3000` built a 300 MB string.
"""
from __future__ import annotations

import json
import tracemalloc

import pytest
import responses

from plugin.campaigns import definitions, runs, schema
from plugin.campaigns.delivery import deliver_outbox
from plugin.campaigns.templates import TemplateProblem, render, sample_context
from tests.helpers import bearer
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

SEND = "https://api.sendgrid.com/v3/mail/send"
NOW = 1_790_000_000
PEAK_BYTES = 40 * 2**20  # far above a legitimate render, far below what the attacks build
BIG = "{% set a = 'a' * 100000 %}"

ATTACKS = [
    "{{ [('a'*100000)] * 3000 }}",                      # the report's template
    "{{ [('a'*100000)] * 10000 }}",
    "{{ [('a'*100000)] * 100000 }}",
    "{{ 'a' * 100000 * 3000 }}",                        # string repeat
    "{{ ['a' * 100000] * 3 * 1000 }}",
    "{{ [[[]]] * 100000 }}",                            # nested empties print 6 characters each
    BIG + "{{ [a, a, a, a, a, a, a, a] | join }}",      # join
    BIG + "{{ [a, a, a] | join(', ') }}",
    BIG + "{{ [a, a, a] }}",                            # a list literal of references
    BIG + "{{ {'k': [a, a], 'l': a} }}",
    BIG + "{{ [a, a, a] | string }}",                   # filters turning a list into text
    BIG + "{{ [a, a, a] | upper }}",
    BIG + "{{ [a, a] | e }}",
    BIG + "{{ [a] ~ [a] }}",                            # concatenation of lists as text
    BIG + "{{ ([a] + [a]) | length }}",
    BIG + "{% set x %}{% for i in range(1000) %}{{ a }}{% endfor %}{% endset %}{{ x | length }}",
    "{% set x %}{% for i in range(1000) %}{% for j in range(19) %}" + "z" * 1000
    + "{% endfor %}{% endfor %}{% endset %}{{ x | length }}",  # nested loops of template text
    BIG + "{% macro m() %}{{ a }}{{ a }}{% endmacro %}{% for i in range(100) %}{% set y = m() %}{% endfor %}",
    BIG + "{% filter upper %}{% for i in range(100) %}{{ a }}{% endfor %}{% endfilter %}",
    "{{ 5 | round(-1000000000) }}",                     # 10 ** precision, computed by round
    "{{ 1.5 | round(1000000000, 'floor') }}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
]


def _peak(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source", ATTACKS)
def test_an_expensive_template_is_refused_within_a_small_memory_bound(source):
    def attempt():
        with pytest.raises(TemplateProblem) as problem:
            render({"text": source, "html": source}, sample_context())
        assert problem.value.code == "template_too_expensive", problem.value.message

    assert _peak(attempt) < PEAK_BYTES


@pytest.fixture
def world(engine):
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": cd.SENDGRID},
                    unsubscribe_url="https://shop.example/u/{user_id}")
    pid = cd.add_prediction(engine, ws)
    people = [(f"u{i}", {"email": f"u{i}@example.com", "first_name": f"N{i}"}) for i in range(3)]
    people.append(("hoarder", {"email": "h@example.com", "first_name": "H", "bio": "b" * 60_000}))
    ids = cd.add_users(engine, ws, people)
    cd.add_scores(engine, ws, pid, {uid: 90.0 for uid in ids.values()})
    return {"ws": ws, "pid": pid, "ids": ids}


def _tier(text: str) -> dict:
    tier = cd.email_tier("High", ["High"])
    tier["channels"][0]["template"]["text"] = text
    return tier


@pytest.mark.parametrize("source", [ATTACKS[0], ATTACKS[6], ATTACKS[15]])
def test_saving_an_expensive_template_is_a_400_template_too_expensive(client, world, source):
    answer = client.post("/v1/campaigns", json=cd.campaign_body(world["pid"], tiers=[_tier(source)]),
                         headers=bearer())
    assert answer.status_code == 400
    error = answer.json["error"]
    assert error["code"] == "template_too_expensive"
    assert error["details"]["tiers"]["0"]["channels"]["0"]["template"]["text"]


# Cheap for the sample user at save (no `bio`), too expensive for a user whose bio is long.
DATA_BOMB = "Hi {{ user.first_name }} {{ [user.bio] * 3 }}"


def test_previewing_a_template_too_expensive_for_one_user_is_a_400(client, world):
    made = client.post("/v1/campaigns", json=cd.campaign_body(world["pid"], tiers=[_tier(DATA_BOMB)]),
                       headers=bearer())
    assert made.status_code == 201, made.json
    path = f"/v1/campaigns/{made.json['id']}/render"
    fine = client.post(path, json={"user_id": "u1"}, headers=bearer())
    assert fine.status_code == 200 and fine.json["messages"][0]["text"].startswith("Hi N1")
    answer = client.post(path, json={"user_id": "hoarder"}, headers=bearer())
    assert answer.status_code == 400 and answer.json["error"]["code"] == "template_too_expensive"


def test_at_delivery_only_the_message_too_expensive_to_render_is_skipped_with_that_reason(engine, world):
    """SendGrid v3 mail/send answers 202 Accepted with an X-Message-Id header:
    https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send"""
    from sqlalchemy import select

    from plugin.store.tables import outbox
    body = cd.campaign_body(world["pid"], tiers=[_tier(DATA_BOMB)])
    campaign, _ = definitions.create(engine, world["ws"], schema.CampaignInput().load(body))
    runs.start_run(engine, world["ws"], campaign["id"], now_ts=NOW)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "sg-1"})
        counts = deliver_outbox(engine, "w1", 100, now_ts=NOW)
        sent_to = [p["to"][0]["email"] for p in json.loads(rsps.calls[0].request.body)["personalizations"]]
    assert counts == {"claimed": 4, "sent": 3, "skipped": 1}
    assert "h@example.com" not in sent_to
    with engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.user_id == world["ids"]["hoarder"])).one()
    assert (row.status, row.reason) == ("skipped", "template_too_expensive")
