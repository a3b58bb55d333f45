"""Platform-neutral slash-command handlers (see issue 4)."""
