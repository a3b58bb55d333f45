"""Which of a channel's mention rules an alert satisfies (`/watch alerts mention`).

The router decides when it queues the alert, with the scores and the cluster's official flag at
hand, and stores the result in the alert's snapshot; the renderers turn it into Discord's
``<@&role>``/``@here`` with ``allowed_mentions``, or Slack's ``<!subteam^…>``/``<!here>``. Digests
never read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.digest.common import Mention


@dataclass(frozen=True, slots=True)
class MentionRule:
    """One rule as routing sees it. ``topic`` "" = any of the alert's topics; ``min_score`` 0 =
    no minimum beyond what made the alert; ``official``: only clusters with an official story."""

    target: Mention
    topic: str = ""
    official: bool = False
    min_score: float = 0.0

    def fires(self, matched: dict[str, float], official: bool) -> bool:
        """``matched``: the alert's topics for this channel with their scores."""
        if self.official and not official:
            return False
        if self.topic:
            if self.topic not in matched:
                return False
            score = matched[self.topic]
        else:
            score = max(matched.values(), default=0.0)
        return score >= self.min_score


def mentions_for(rules: Iterable[MentionRule], matched: dict[str, float], official: bool) -> list[Mention]:
    """Every distinct target of the rules that fire, once each, in rule order: a story matching
    several rules gets one mention line."""
    targets = dict.fromkeys(rule.target for rule in rules if rule.fires(matched, official))
    return list(targets)
