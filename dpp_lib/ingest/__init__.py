"""Payload → event rows: pure normalisers, ticket linking, enrichment, anonymisation."""
