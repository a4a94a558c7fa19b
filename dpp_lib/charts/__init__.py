"""Altair chart builders: a metric result in, a chart out (no maths here)."""
