"""Delivery Performance Platform library: ingestion, storage, projections and metrics."""

__version__ = "0.1.0"
