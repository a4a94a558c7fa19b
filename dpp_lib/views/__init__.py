"""Read models: what the API answers (and the dashboards show), built from ``dpp_lib.store``
reads and ``dpp_lib.metrics`` functions. No maths here: a view reads the frames for one
scope and ``as_of``, calls the metric functions and shapes their results into the field
names and units of the API reference. Every function takes an open connection, the org
lookups and a ``Scope`` the caller has already restricted to what the principal may see.
"""
