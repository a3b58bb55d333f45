"""Frontier Watch: watches AI news feeds and model-release trackers and posts alerts and digests."""

__version__ = "0.1.0"
