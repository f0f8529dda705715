"""The store's tables (SQLAlchemy Core). Every row belongs to a workspace.

Events keep integer keys and epoch-second timestamps: they are the largest table
(tens of millions of rows) and feature building scans them, so narrow rows matter.
"""
from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Column,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        LargeBinary,
                        MetaData,
                        PrimaryKeyConstraint,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        text,
)

from plugin.store.types import BigId, Json, UtcDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

workspaces = Table(
    "workspaces", metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("settings", Json, nullable=False, default=dict),  # the integration form, secrets removed
    Column("created_at", UtcDateTime, nullable=False),
    # active | uninstalled: the scheduler plans jobs for active workspaces only, and an
    # uninstalled one's data is deleted once `uninstalled_at` is past the grace period.
    Column("status", String(16), nullable=False, default="active", server_default="active"),
    Column("uninstalled_at", UtcDateTime, nullable=True),
    # The secret settings (fields marked x-secret), one Fernet token of their JSON.
    Column("secret_settings", Text, nullable=True),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the key
    Column("label", String(255), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

webhook_secrets = Table(
    "webhook_secrets", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("secret_encrypted", Text, nullable=False),  # Fernet token of the whsec_ secret
    Column("created_at", UtcDateTime, nullable=False),
)

# One row per accepted webhook delivery, written in the same transaction as its data,
# so a redelivered `webhook-id` is acknowledged without changing anything. Keyed per workspace
# and endpoint: the same id sent to another endpoint is another delivery.
webhook_receipts = Table(
    "webhook_receipts", metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", String(255), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("response", Json, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("workspace_id", "endpoint", "webhook_id", name="pk_webhook_receipts"),
)

users = Table(
    "users", metadata,
    Column("id", BigId, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("attributes", Json, nullable=False, default=dict),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("workspace_id", "external_id", name="uq_users_workspace_external"),
)

event_types = Table(
    "event_types", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_event_types_workspace_name"),
)

events = Table(
    "events", metadata,
    Column("id", BigId, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("event_type_id", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),  # epoch seconds, UTC
    Column("properties", Json, nullable=True),
    # 64-bit hash of the event's identity (its event_id, or its content): makes ingest idempotent.
    Column("event_key", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "event_key", name="uq_events_workspace_key"),
    Index("ix_events_user_type_ts", "workspace_id", "user_id", "event_type_id", "ts"),
    Index("ix_events_type_ts", "workspace_id", "event_type_id", "ts"),
)

erasures = Table(
    "erasures", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("webhook_id", String(255), nullable=True),
    Column("users_erased", Integer, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
)

# --- predictions and the scoring store --------------------------------------------------

predictions = Table(
    "predictions", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("goal_event", String(255), nullable=False),
    Column("goal_kind", String(16), nullable=False, server_default="event"),  # event | churn (not performing it)
    Column("goal_condition", Json, nullable=True),   # optional property condition on the goal event
    Column("window_days", Integer, nullable=False),
    Column("audience", Json, nullable=True),         # eligible audience: a filter tree
    Column("categories", Json, nullable=False),      # category scheme
    Column("schedule", String(16), nullable=False),  # daily | weekly | monthly
    Column("retrain_days", Integer, nullable=False),
    Column("status", String(16), nullable=False),    # demo | preview | active | archived
    Column("current_model_id", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_trained_at", UtcDateTime, nullable=True),
    Column("last_scored_at", UtcDateTime, nullable=True),
    Column("last_backtested_at", UtcDateTime, nullable=True),
    Column("archived_from", String(16), nullable=True),  # the status to restore on unarchive
    UniqueConstraint("workspace_id", "name", name="uq_predictions_workspace_name"),
)

prediction_models = Table(
    "prediction_models", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("cutoff_at", UtcDateTime, nullable=False),   # features as of here; labels in (cutoff, cutoff + window]
    Column("model_text", Text, nullable=False),         # LightGBM's own model format
    Column("calibration", Json, nullable=False),
    Column("features", Json, nullable=False),
    Column("params", Json, nullable=False),
    Column("counts", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    UniqueConstraint("prediction_id", "version", name="uq_prediction_models_prediction_version"),
)

# The scoring store: the current run's score per (prediction, user). A run replaces the
# prediction's rows inside one transaction, so readers never see half a run.
scores = Table(
    "scores", metadata,
    Column("workspace_id", Integer, nullable=False),
    Column("prediction_id", Integer, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("score", Float, nullable=False),             # calibrated probability x 100
    Column("category", String(64), nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("scored_at", BigInteger, nullable=False),    # epoch seconds
    Index("ix_scores_prediction_score", "prediction_id", "score"),
    # Covers score too, so a category preview sums expected conversions from the index alone.
    Index("ix_scores_prediction_category_score", "prediction_id", "category", "score"),
)

# --- audiences: segments and their versioned membership ----------------------------------

segments = Table(
    "segments", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("definition", Json, nullable=False),         # the audience tree, as validated
    Column("host_audience_id", String(255), nullable=True),  # set when the host's builder owns it
    Column("version", Integer, nullable=False),         # the current snapshot
    Column("oldest_version", Integer, nullable=False),  # the oldest snapshot still readable
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("refreshed_at", UtcDateTime, nullable=False),
    UniqueConstraint("workspace_id", "host_audience_id", name="uq_segments_workspace_host_audience"),
)

# One row per snapshot: what it was computed from and how it differed from the one before.
segment_versions = Table(
    "segment_versions", metadata,
    Column("segment_id", Integer, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", Json, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("added", BigInteger, nullable=False),
    Column("removed", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Versioned membership: a row is one stretch of membership, [added_version, removed_version).
# Snapshot v = rows with added_version <= v < coalesce(removed_version, inf), so a refresh never
# rewrites an older snapshot: readers paging through v see it whole while v + 1 is written.
# The host id is kept with the member and the table is clustered on its key (WITHOUT ROWID on
# SQLite), so exporting a snapshot is one range scan, not a lookup per member.
segment_members = Table(
    "segment_members", metadata,
    Column("segment_id", Integer, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("added_version", Integer, primary_key=True),
    Column("removed_version", Integer, nullable=True),
    Column("external_id", String(255), nullable=False),
    # No index on the versions: with one, SQLite's planner prefers (segment_id, removed_version)
    # over the primary key for per-user lookups and a refresh turns quadratic. A diff scans
    # one segment's rows in key order instead, which is linear.
    sqlite_with_rowid=False,
)

# --- scoring runs and backtests (predictions) -------------------------------------------

# One row per scoring run: what it scored and how, kept after the run's scores are replaced
# so a backtest can later compare them with what users did.
scoring_runs = Table(
    "scoring_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("as_of", BigInteger, nullable=False),         # epoch seconds: features as of here
    Column("window_days", Integer, nullable=False),
    Column("status", String(16), nullable=False),        # running | complete | failed
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("users_scored", Integer, nullable=False, default=0),
    Column("expected_conversions", Float, nullable=False, default=0.0),
    Column("histogram", Json, nullable=False),           # users per whole score point, 100 bins
    Column("categories", Json, nullable=False),          # resolved bounds and users per category
    Index("ix_scoring_runs_prediction_as_of", "prediction_id", "as_of"),
)

# The run's per-user scores, compactly: one row per scoring chunk, user ids delta-encoded
# and scores as hundredths (uint16), both zlib-compressed.
scoring_run_chunks = Table(
    "scoring_run_chunks", metadata,
    Column("run_id", Integer, ForeignKey("scoring_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("users", Integer, nullable=False),
    Column("user_ids", LargeBinary, nullable=False),
    Column("scores", LargeBinary, nullable=False),
)

backtests = Table(
    "backtests", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", Integer, ForeignKey("scoring_runs.id", ondelete="CASCADE"), nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("metrics", Json, nullable=False),
    UniqueConstraint("run_id", name="uq_backtests_run_id"),
)

# The trainings asked for: a new prediction's first one is queued when it is created and run
# by the `train_queued` job (queued → building → ready | refused | failed).
prediction_trainings = Table(
    "prediction_trainings", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("claim_expires", BigInteger, nullable=True),   # a crashed trainer's claim lapses
    Column("model_id", Integer, nullable=True),
    Column("details", Json, nullable=True),               # counts of a refusal, reason of a failure
    Index("ix_prediction_trainings_state", "state"),
    Index("ix_prediction_trainings_prediction_id", "prediction_id"),
)

# --- scheduled jobs -------------------------------------------------------------------------
# APScheduler keeps its own `apscheduler_jobs` table (created by APScheduler, not declared here).

# The run log, and the half of "exactly once" that is per scheduled run: a (job_id, run_key)
# row is inserted before a run starts, so a second scheduler firing the same scheduled time
# fails on the unique constraint instead of running the job again.
job_runs = Table(
    "job_runs", metadata,
    Column("id", BigId, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True),
    Column("job_id", String(191), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("run_key", String(64), nullable=False),      # the scheduled time (UTC ISO) or manual:<uuid>
    Column("holder", String(128), nullable=False),      # host:pid:instance of the scheduler that ran it
    Column("scheduled_at", UtcDateTime, nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=False),      # running | ok | failed | skipped
    Column("counts", Json, nullable=True),
    Column("error", Text, nullable=True),               # redacted, never a secret
    UniqueConstraint("job_id", "run_key", name="uq_job_runs_job_run_key"),
    Index("ix_job_runs_workspace_id_id", "workspace_id", "id"),
    Index("ix_job_runs_started_at", "started_at"),
)

# The other half: one lease per job while a run is in progress, so an overrunning job is not
# started again. The holder renews `expires_at`; a crashed holder's lease simply expires.
job_leases = Table(
    "job_leases", metadata,
    Column("job_id", String(191), primary_key=True),
    Column("run_key", String(64), nullable=False),
    Column("holder", String(128), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# --- campaigns: definitions, runs, the outbox, and what delivery learns --------------------

campaigns = Table(
    "campaigns", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False),
    Column("audience", Json, nullable=True),          # optional layered audience tree
    Column("tiers", Json, nullable=False),            # validated tiers, highest band first
    Column("schedule", Json, nullable=False),         # {"type": once | at | recurring, ...}
    Column("remessage_after_days", Integer, nullable=True),  # null: never message a user twice
    Column("preset", String(64), nullable=True),
    Column("status", String(16), nullable=False),     # active | paused | completed | archived
    Column("next_run_at", BigInteger, nullable=True),  # epoch seconds; null: nothing scheduled
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_campaigns_workspace_name"),
)

# One row per run; (campaign, run_key) is unique so a double click or a redelivered request
# finds the run it already made instead of making a second one.
campaign_runs = Table(
    "campaign_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("run_key", String(255), nullable=False),
    Column("trigger", String(16), nullable=False),    # manual | schedule
    Column("status", String(16), nullable=False),     # planned | cancelled
    Column("run_ts", BigInteger, nullable=False),     # epoch seconds the run targeted users at
    Column("model_id", Integer, nullable=True),
    Column("window_days", Integer, nullable=False),   # the prediction's window when it ran
    Column("goal_event", String(255), nullable=False),
    Column("counts", Json, nullable=False),           # per tier: targeted, already_* (not rows)
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("campaign_id", "run_key", name="uq_campaign_runs_campaign_key"),
)

# The durable outbox: one row per (run, user, channel) — its primary key, from which the
# idempotency key is derived — written before anything is sent. No surrogate id and no
# foreign keys: a run writes up to millions of rows in one statement, in user order, so every
# index grows at its end. status: pending -> sending (request in flight) -> sent | failed (due
# again at next_attempt_at) | dead | skipped (reason) | held (configuration problem) | unknown
# (a crash or an ambiguous answer: the provider may have it; never sent again).
outbox = Table(
    "outbox", metadata,
    Column("run_id", Integer, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("campaign_id", Integer, nullable=False),
    Column("tier", Integer, nullable=False),          # index into campaigns.tiers
    Column("connector", String(64), nullable=False),
    Column("idempotency_key", String(36), nullable=False),  # uuid5(campaign, run, user, channel)
    Column("status", String(8), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("score", Float, nullable=False),           # the score the run saw (expected conversions)
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claim_expires", BigInteger, nullable=True),
    Column("provider_id", String(255), nullable=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("sent_ts", BigInteger, nullable=True),
    # Only rows that may still be sent are in the claim index: sent and skipped rows cost nothing.
    Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("status IN ('pending', 'failed')"),
          sqlite_where=text("status IN ('pending', 'failed')")),
    Index("ix_outbox_user_campaign", "user_id", "campaign_id"),
    # Rows a worker marked in flight: a crashed worker's are found by their expired lease.
    Index("ix_outbox_in_flight", "claim_expires", postgresql_where=text("status = 'sending'"),
          sqlite_where=text("status = 'sending'")),
)

# Addresses and device tokens a provider called invalid: never used again. Kept as SHA-256
# (the delivery worker compares hashes), so no raw address outlives the user's own row.
dead_addresses = Table(
    "dead_addresses", metadata,
    Column("workspace_id", Integer, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("address_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("reason", String(300), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# A per-connector circuit breaker: a connector that keeps failing is paused until open_until.
connector_breakers = Table(
    "connector_breakers", metadata,
    Column("workspace_id", Integer, primary_key=True),
    Column("connector", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),      # consecutive failed provider calls
    Column("open_until", BigInteger, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# --- write-back of scores to the host, and segment syncs to destinations -----------------

# What was last written to the host per (prediction, user), so a write-back sends changes only.
score_writebacks = Table(
    "score_writebacks", metadata,
    Column("workspace_id", Integer, nullable=False),
    Column("prediction_id", Integer, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("score", Integer, nullable=False),
    Column("category", String(64), nullable=False),
    Column("written_ts", BigInteger, nullable=False),
)

segment_destinations = Table(
    "segment_destinations", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("segment_id", Integer, nullable=False),
    Column("connector", String(64), nullable=False),
    Column("audience_id", String(255), nullable=False),  # the provider's audience / cohort id
    Column("mode", String(16), nullable=False),          # mirror | additive
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_synced_at", UtcDateTime, nullable=True),
    Column("last_synced_version", Integer, nullable=True),
    UniqueConstraint("segment_id", "connector", "audience_id", name="uq_segment_destinations_target"),
)

# The membership last pushed to a destination: a sync sends only the difference from here.
destination_members = Table(
    "destination_members", metadata,
    Column("destination_id", Integer, ForeignKey("segment_destinations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("synced_ts", BigInteger, nullable=False),
)

# What erasure still has to remove from a destination. Queued by erasure before the user's rows
# go (the `destination_members` rows that said what was pushed go with them), sent by the
# destination's next sync, deleted once the provider accepted the removal. It keeps only what
# the provider matches members on. No `user_id` column: erasure's sweep of every table that
# holds one must leave this queue alone.
erasure_removals = Table(
    "erasure_removals", metadata,
    Column("id", BigId, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("destination_id", Integer, ForeignKey("segment_destinations.id", ondelete="CASCADE"),
           nullable=False),
    Column("member_id", String(255), nullable=False),   # the host's user id (external id)
    Column("identifiers", Json, nullable=False),        # email, phone, names... as the user had them
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("destination_id", "member_id", name="uq_erasure_removals_destination_member"),
)

segment_syncs = Table(
    "segment_syncs", metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("destination_id", Integer, ForeignKey("segment_destinations.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("segment_version", Integer, nullable=True),
    Column("status", String(16), nullable=False),     # ok | partial | failed
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("error", String(300), nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
)

# --- engagement back and opt-outs ---------------------------------------------------------

# What happened to a message after it was sent, one row per outbox row (its key), from the
# providers' event webhooks and the host's engagement events. Each time is the first seen.
outbox_engagement = Table(
    "outbox_engagement", metadata,
    Column("run_id", Integer, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("workspace_id", Integer, nullable=False),
    Column("delivered_ts", BigInteger, nullable=True),
    Column("opened_ts", BigInteger, nullable=True),
    Column("clicked_ts", BigInteger, nullable=True),
    Column("bounced_ts", BigInteger, nullable=True),
    Column("bounce", String(16), nullable=True),       # hard | soft
    Column("dropped_ts", BigInteger, nullable=True),
    Column("complained_ts", BigInteger, nullable=True),  # marked as spam
    Column("unsubscribed_ts", BigInteger, nullable=True),
    Column("updated_ts", BigInteger, nullable=False),
)

# A user's opt-out, per channel: every later run and sync skips them (reason `unsubscribed`).
# Written back to the host when the workspace has a host connector (written_back_at).
unsubscribes = Table(
    "unsubscribes", metadata,
    Column("workspace_id", Integer, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("source", String(32), nullable=False),      # one_click | link | sendgrid | host
    Column("created_at", UtcDateTime, nullable=False),
    Column("written_back_at", UtcDateTime, nullable=True),
    Column("write_back_error", String(300), nullable=True),
)
