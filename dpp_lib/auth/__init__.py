"""Access (spec §3, §8.4): users and passwords, roles and group mappings, sessions, sign-in
throttling. Storage and rules only; HTTP lives in ``ingest_service``."""
