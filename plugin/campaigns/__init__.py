"""Tiered campaigns: definitions, sandboxed templates, the durable outbox and its delivery worker,
results, segment syncs to destinations and score write-back to the host."""
