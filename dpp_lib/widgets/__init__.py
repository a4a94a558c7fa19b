"""ipywidgets building blocks of the Voila dashboards: the shared filter bar (``filters``,
spec §7.2) with its URL query string (``url``), and the zones, tiles, empty states and
"reduced confidence" badges pages are made of (``layout``, spec §5.6)."""
