"""Long-running parts of the process (chat gateways, the outbox worker, the digest clock).

``frontierwatch run`` starts every service the composition root built, and stops them in
reverse order on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

from typing import Protocol


class ServiceStartError(Exception):
    """A service could not start; the message is one line naming it and why."""


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class DigestRunner(Protocol):
    """What `/watch digest now` needs from the delivery side (implemented in ``bot.delivery``)."""

    async def digest_now(self, destination_id: int) -> int:
        """Queue and send a digest for this destination now; returns how many entries it holds."""
        ...
