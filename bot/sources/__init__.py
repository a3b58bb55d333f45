"""Fetching sources: feeds and model-release trackers, and the URL safety checks around them."""
