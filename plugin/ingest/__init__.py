"""Ingest: webhook batches and file imports share one validator and one writer."""
