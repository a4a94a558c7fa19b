"""Scheduled computation (DESIGN §7): ``schedules/schedules.yaml`` jobs run with papermill.

- ``config``: the schedules file, validated against the notebooks;
- ``slots``: cron slots from APScheduler's ``CronTrigger``;
- ``runs``: run records (``schedule_runs``), the database's exclusion of double runs;
- ``execute``: papermill in a child process that a timeout or a stop kills with its kernel;
- ``runner``: the decisions (due, catch-up, missed, skipped, stale), clock injected;
- ``service``: APScheduler wiring for ``dpp scheduler`` and ``dpp up``.
"""
