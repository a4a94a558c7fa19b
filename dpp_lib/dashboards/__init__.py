"""The dashboards' server side: launching Voila behind the front door (``voila``), and what
the dashboard kernels use to know who is asking (``identity``) and to read only the streams
that person may see (``data``)."""
