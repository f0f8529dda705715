"""A 1,000,000-user tiered campaign, planned and delivered against local fake providers.

    python bench/campaigns.py [--users 1000000] [--backends sqlite,postgresql] [--workers 2]

Three tiers of one prediction: High → push (FCM), Medium → email (SendGrid, 10 % off),
Low → email (20 % off), 5 % control group per tier. Users and scores are bulk-loaded through
the driver (executemany / COPY). Measured:

- planning: `start_run` — the run row and every outbox row written (users in bands / s);
- delivery: worker processes calling `deliver_outbox` until nothing is due, against the fake
  provider of `bench/connectors.py` (its own process on 127.0.0.1, 10 ms per request):
  messages settled / s, end to end (claim, render, send, settle).

PostgreSQL runs in a fresh database `likely_bench_x` on LIKELY_BENCH_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped afterwards. Exit status 1 when a
target is missed (planning ≥ 100,000 users/s, email delivery ≥ 5,000 messages/s).
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from connectors import net  # noqa: E402
from plugin import workspaces  # noqa: E402
from plugin.campaigns import definitions, runs, schema  # noqa: E402
from plugin.campaigns.delivery import deliver_outbox  # noqa: E402
from plugin.store import make_engine, transaction  # noqa: E402
from plugin.store.migrate import upgrade  # noqa: E402
from plugin.store.tables import outbox  # noqa: E402
from plugin.store.tables import workspaces as workspaces_table

TARGETS = {"plan": 100_000.0, "email": 5_000.0}
POSTGRES = os.environ.get("LIKELY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BENCH_DB = "likely_bench_x"
TEXT = "Hi {{ user.first_name }}, {{ offer.discount_percent | int }}% off: your score is {{ score | round | int }}."
HTML = "<p>Hi {{ user.first_name }},</p><p><b>{{ offer.discount_percent | int }}% off</b> with {{ offer.code }}.</p>"


def _bench_module(name: str):
    """A sibling module of bench/, loaded by path (bench/connectors.py would shadow `connectors`)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_provider():
    return _bench_module("connectors")


def tiers() -> list[dict]:
    def email(name, categories, discount, code):
        return {"name": name, "band": {"categories": categories}, "offer": {"discount_percent": discount, "code": code},
                "control_share": 0.05, "channels": [{"channel": "email", "connector": "sendgrid",
                                                     "template": {"subject": "{{ offer.discount_percent | int }}% off",
                                                                  "text": TEXT, "html": HTML}}]}
    high = {"name": "High", "band": {"categories": ["High"]}, "offer": {"discount_percent": 0}, "control_share": 0.05,
            "channels": [{"channel": "push", "connector": "fcm",
                          "template": {"subject": "Still thinking about it?", "text": TEXT}}]}
    return [high, email("Medium", ["Medium"], 10, "LIKELY10"), email("Low", ["Low"], 20, "LIKELY20")]


def configure(engine, base: str, service_account: str) -> int:
    ws = workspaces.ensure(engine, "default").id
    with transaction(engine) as conn:
        conn.execute(update(workspaces_table).where(workspaces_table.c.id == ws).values(settings={
            "unsubscribe_url": "https://shop.example/unsubscribe/{user_id}",
            "connectors": {
                "sendgrid": {"enabled": True, "api_key": "SG.bench", "from_email": "bench@likely.example",
                             "base_url": base},
                "fcm": {"enabled": True, "project_id": "bench", "service_account_json": service_account,
                        "base_url": base, "token_uri": f"{base}/token"}}}))
    return ws


def deliver_worker(url: str, worker: str, limit: int, out) -> None:
    net.configure(["127.0.0.1"])  # the fake provider, trusted as an operator trusts an emulator
    engine = make_engine(url)
    totals: dict[str, int] = {}
    idle = 0
    while idle < 2:  # two empty passes in a row: nothing left that is due
        counts = deliver_outbox(engine, worker, limit)
        idle = 0 if counts.get("claimed") else idle + 1
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    engine.dispose()
    out.put(totals)


def bench_backend(name: str, url: str, users: int, workers: int, limit: int, base: str, account: str) -> dict:
    upgrade(url)
    engine = make_engine(url)
    ws = configure(engine, base, account)
    started = time.perf_counter()
    prediction_id = _bench_module("campaign_data").load(engine, ws, users)
    load_s = time.perf_counter() - started
    body = {"name": "bench", "prediction_id": prediction_id, "tiers": tiers()}
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load(body))

    started = time.perf_counter()
    run, _ = runs.start_run(engine, ws, campaign["id"])
    plan_s = time.perf_counter() - started
    in_bands = sum(t["targeted"] for t in run["counts"]["tiers"])
    print(f"{name}: loaded {users:,} users in {load_s:.1f} s; planned {in_bands:,} in {plan_s:.1f} s; delivering…",
          file=sys.stderr, flush=True)

    queue = multiprocessing.Queue()
    started = time.perf_counter()
    procs = [multiprocessing.Process(target=deliver_worker, args=(url, f"bench-{i}", limit, queue))
             for i in range(workers)]
    for p in procs:
        p.start()
    totals = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    deliver_s = time.perf_counter() - started
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(outbox.c.channel.concat(":").concat(outbox.c.status), func.count())
                                      .group_by(outbox.c.channel, outbox.c.status)).all())
    engine.dispose()
    sent = {ch: by_status.get(f"{ch}:sent", 0) for ch in ("email", "push")}
    left = sum(n for k, n in by_status.items() if k.split(":")[1] in ("pending", "failed", "held", "dead"))
    return {"backend": name, "users": users, "load_s": load_s, "plan_s": plan_s, "in_bands": in_bands,
            "plan_rate": in_bands / plan_s, "deliver_s": deliver_s, "sent": sent, "left": left,
            "skipped": sum(n for k, n in by_status.items() if k.endswith(":skipped")),
            "message_rate": sum(sent.values()) / deliver_s, "workers": totals}


def postgres_url() -> tuple[str, object]:
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    return make_url(POSTGRES).set(database=BENCH_DB).render_as_string(hide_password=False), admin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2, help="delivery worker processes")
    parser.add_argument("--limit", type=int, default=2000, help="rows claimed per delivery pass")
    args = parser.parse_args()
    fake = _fake_provider()
    receive, send = multiprocessing.Pipe(duplex=False)
    provider = multiprocessing.Process(target=fake.serve, args=(send,), name="fake-provider", daemon=True)
    provider.start()
    if not receive.poll(30):
        raise RuntimeError("the fake provider did not start")
    base = f"http://127.0.0.1:{receive.recv()}"
    account = fake.service_account(f"{base}/token")
    figures = []
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    figures.append(bench_backend("sqlite", f"sqlite:///{tmp}/bench.sqlite", args.users,
                                                 args.workers, args.limit, base, account))
            else:
                url, admin = postgres_url()
                try:
                    figures.append(bench_backend("postgresql", url, args.users, args.workers, args.limit,
                                                 base, account))
                finally:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
                    admin.dispose()
    finally:
        provider.terminate()
        provider.join(10)
    return report(figures)


def report(figures: list[dict]) -> int:
    missed = False
    print(f"fake providers: 127.0.0.1 (own process), {_fake_provider().LATENCY * 1000:.0f} ms per request")
    for f in figures:
        email_rate = f["sent"]["email"] / f["deliver_s"]
        plan_ok, email_ok = f["plan_rate"] >= TARGETS["plan"], email_rate >= TARGETS["email"]
        missed |= not (plan_ok and email_ok) or f["left"] > 0
        print(f"\n{f['backend']}: {f['users']:,} users (bulk load {f['load_s']:.1f} s)")
        print(f"  plan     {f['in_bands']:>9,} users in bands in {f['plan_s']:6.1f} s = {f['plan_rate']:>9,.0f} users/s"
              f"   target >= {TARGETS['plan']:,.0f}  {'OK' if plan_ok else 'MISSED'}")
        print(f"  deliver  {sum(f['sent'].values()):>9,} messages in {f['deliver_s']:6.1f} s = "
              f"{f['message_rate']:>9,.0f} msg/s  ({f['sent']['email']:,} email = {email_rate:,.0f}/s, "
              f"{f['sent']['push']:,} push; {f['skipped']:,} skipped; {f['left']} not settled)"
              f"   email target >= {TARGETS['email']:,.0f}  {'OK' if email_ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
