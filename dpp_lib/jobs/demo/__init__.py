"""Demo data for the Acme Financial organisation (or any org config): a deterministic
simulation of tickets, pull requests, deployments, incidents and pulse responses, rendered
as the exact webhook and event-API deliveries the platform receives, plus a sender.

    deliveries = generate_demo(config, days=180, seed=7, until=now)
    report = send_deliveries(deliveries, base_url=..., github_secret=..., jira_secret=...,
                             api_key=...)
"""

from dpp_lib.jobs.demo.delivery import Delivery
from dpp_lib.jobs.demo.generate import generate_demo
from dpp_lib.jobs.demo.send import SendReport, hub_signature, send_deliveries, signed_request

__all__ = [
    "Delivery",
    "SendReport",
    "generate_demo",
    "hub_signature",
    "send_deliveries",
    "signed_request",
]
