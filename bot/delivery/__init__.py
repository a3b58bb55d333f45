"""Routing, the outbox and the sinks that post alerts and digests (issue 5)."""
