"""Events → derived per-entity records, updated by the worker as events arrive."""
