"""Trends over weeks: named entities in headlines (``entities``) and the chart PNG (``chart``).

The queries that feed them live in ``bot/store/trends.py``.
"""
