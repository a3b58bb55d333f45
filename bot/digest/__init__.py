"""Selecting, ranking and rendering digests."""
