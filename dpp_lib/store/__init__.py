"""Storage: table definitions, engines, migrations, idempotent writes and window reads."""
