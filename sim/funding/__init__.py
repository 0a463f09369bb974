"""Funding in dollars: unit costs (costs.py) and a run's spending turned into lever levels per draw (plan.py)."""
