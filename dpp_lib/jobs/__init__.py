"""Jobs with I/O: processing the inbox, the demo organisation, rebuilds and schedules."""
