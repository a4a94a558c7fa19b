"""Random draws the simulation needs beyond ``random.Random``'s own."""

from __future__ import annotations

import math
import random


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A lognormal draw given its median and the sigma of its log."""
    return median * math.exp(rng.gauss(0.0, sigma))


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
