"""Thin adapters between the platform-neutral handlers and discord.py / slack-bolt (issue 4)."""
