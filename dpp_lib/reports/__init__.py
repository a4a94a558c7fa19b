"""Retro reports: one delivery stream's sprint as a self-contained HTML page.

``retro`` reads a sprint's metric results, ``notes`` turns them into plain language,
``sections`` shows them in the report notebook (``notebooks/reports/sprint_retro.ipynb``),
``render`` runs that notebook with papermill and exports it, ``index`` lists the reports and
``closed`` renders the reports of sprints that just closed.
"""
