"""Mentions for what matters (issue 13, item 4): `/watch alerts mention` rules, parsed the same on
Discord and Slack, turned into pings on alerts (Discord role or @here with a matching
``allowed_mentions``; Slack ``<!subteam^…>`` or ``<!here>``) and never in digests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.delivery.mentions import MentionRule, mentions_for
from bot.digest.common import Mention
from bot.platforms.slack_app import slack_unescape
from bot.store import models as m
from bot.store.chat import ChannelKey, MentionRuleView
from bot.store.repo import Store
from handlers import Command, Reply, Rights, handle, parse_text
from tests.support.chat_env import ChatEnv, chat_env
from tests.support.discord_api import DiscordAPI
from tests.support.newsdb import add_destination, add_story, build_delivery, deliveries, open_store
from tests.support.slack_api import SlackAPI

pytestmark = pytest.mark.usefixtures("restore_discord_base")

TOPICS = ("distillation", "ip", "natsec", "release")
GUILD = "200000000000000001"
DCH = "300000000000000001"
ROLE = "500000000000000001"
ROLE2 = "500000000000000002"


# ------------------------------------------------------------------------------------ rule logic
def test_rules_fire_on_topic_official_and_score_and_each_target_comes_once() -> None:
    analysts, here = Mention("group", "S1"), Mention("here")
    rules = [
        MentionRule(analysts, topic="natsec"),
        MentionRule(analysts, official=True),  # the same target again: still one mention
        MentionRule(here, official=True, min_score=0.9),
    ]
    assert mentions_for(rules, {"natsec": 0.8}, official=False) == [analysts]
    assert mentions_for(rules, {"ip": 0.95}, official=False) == []  # natsec only, and not official
    assert mentions_for(rules, {"natsec": 0.8}, official=True) == [analysts]  # 0.8 < 0.9
    assert mentions_for(rules, {"natsec": 0.95}, official=True) == [analysts, here]
    assert (
        mentions_for([MentionRule(here, topic="ip", min_score=0.7)], {"ip": 0.69, "natsec": 0.99}, False)
        == []
    )


# ------------------------------------------------------------------------------------ handlers
@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ChatEnv]:
    async with chat_env(database_url) as e:
        yield e


async def run(
    env: ChatEnv,
    text: str,
    *,
    platform: str = "slack",
    manager: bool = True,
    args: tuple[str, ...] | None = None,
) -> Reply:
    invocation = parse_text(text)
    if args is not None:  # Discord: the adapter builds the words from its options
        invocation = type(invocation)(invocation.group, invocation.action, args, " ".join(args))
    command = Command(
        platform=platform,
        workspace_id=GUILD if platform == "discord" else "T1",
        channel_id="C1",
        user_id="U1",
        rights=Rights.fixed(manager, "the right"),
        invocation=invocation,
        channel_name="policy",
        user_name="alice",
    )
    return await handle(env.deps, command)


def test_slack_text_forms_map_onto_the_discord_subcommands() -> None:
    assert parse_text("alerts mention list").action == "mention-list"
    removed = parse_text("alerts mention remove 3")
    assert (removed.action, removed.args) == ("mention-remove", ("3",))
    off = parse_text("alerts mention off")
    assert (off.action, off.args) == ("mention-remove", ("all",))
    add = parse_text("alerts mention <!subteam^S0ABC|@analysts> topic natsec official min-score 0.8")
    assert add.action == "mention" and add.args[0] == "<!subteam^S0ABC|@analysts>"
    # Slack's escaping of the command text keeps a user group whole (its id is what we need).
    assert slack_unescape("mention <!subteam^S0ABC|@analysts> <!here> <https://x.example|x>") == (
        "mention <!subteam^S0ABC|@analysts> !here https://x.example"
    )


async def test_add_list_and_remove_rules_on_slack(env: ChatEnv) -> None:
    await run(env, "subscribe natsec alerts")
    reply = await run(env, "alerts mention <!subteam^S0ABC|@analysts> topic natsec official min-score 0.8")
    assert reply.status == "ok" and not reply.ephemeral, reply.text  # the channel sees the change
    assert "@analysts (S0ABC)" in reply.text and "official sources only" in reply.text
    assert "score ≥ 0.8" in reply.text and "Digests never mention" in reply.text
    [row] = await env.rows(m.MentionRule)
    assert (row.target_kind, row.target_id, row.topic, row.official, row.min_score) == (
        "group",
        "S0ABC",
        "natsec",
        True,
        0.8,
    )
    again = await run(env, "alerts mention <!subteam^S0ABC|@analysts> topic natsec official min-score 0.8")
    assert (
        again.status == "info" and "exists already" in again.title and len(await env.rows(m.MentionRule)) == 1
    )
    here = await run(env, "alerts mention @here")
    assert here.status == "ok"
    assert "no alerts" not in here.text  # the channel has natsec alerts: no warning
    listed = await run(env, "alerts mention list", manager=False)  # reading is open to everyone
    assert listed.status == "info" and f"#{row.id}" in listed.text and "@here" in listed.text
    assert "@here" in (await run(env, "alerts", manager=False)).text
    assert "Mentions on alerts" in (await run(env, "status", manager=False)).text
    gone = await run(env, f"alerts mention remove {row.id}")
    assert gone.status == "ok" and f"#{row.id}" in gone.title
    assert [r.target_kind for r in await env.rows(m.MentionRule)] == ["here"]
    off = await run(env, "alerts mention off")
    assert off.status == "ok" and await env.rows(m.MentionRule) == []
    assert (await run(env, "alerts mention list")).title == "No mention rules in this channel."


async def test_a_rule_on_a_topic_without_alerts_says_it_waits(env: ChatEnv) -> None:
    await run(env, "subscribe ip digest")
    reply = await run(env, "alerts mention S0ABC topic natsec")
    assert reply.status == "ok" and "no alerts on `natsec` yet" in reply.text


async def test_discord_roles_and_everyone(env: ChatEnv) -> None:
    reply = await run(env, "alerts mention", platform="discord", args=(f"<@&{ROLE}>", "topic", "release"))
    assert reply.status == "ok" and f"<@&{ROLE}>" in reply.text
    refused = await run(env, "alerts mention", platform="discord", args=(f"<@&{GUILD}>",))
    assert refused.status == "error" and refused.ephemeral and "@everyone" in refused.title
    slack_syntax = await run(env, "alerts mention", platform="discord", args=("<!subteam^S0ABC>",))
    assert slack_syntax.status == "error" and "role" in slack_syntax.text


@pytest.mark.parametrize(
    ("text", "problem", "accepted"),
    [
        ("alerts mention", "Say whom to mention", "@here"),
        ("alerts mention topic natsec", "Say whom to mention first", "Usage:"),
        ("alerts mention @analysts", "plain text", "should_escape"),
        (f"alerts mention <@&{ROLE}>", "is not a user group", "S0123ABCD"),
        ("alerts mention @here topic", "needs a topic name", "`natsec`"),
        ("alerts mention @here topic weather", "Unknown topic `weather`", "`natsec`"),
        ("alerts mention @here min-score 2", "not a score above 0", "min-score 0.8"),
        ("alerts mention @here min-score 0", "not a score above 0", "min-score 0.8"),
        ("alerts mention @here min-score high", "not a score above 0", "min-score 0.8"),
        ("alerts mention @here official official", "given twice", "Options:"),
        ("alerts mention @here loudly", "not an option", "`official`"),
        ("alerts mention S0ABC @here", "One rule mentions one target", "Usage:"),
        ("alerts mention remove", "Which rule?", "`all`"),
        ("alerts mention remove seven", "not a rule id", "`all`"),
        ("alerts mention remove 99", "no mention rule #99", "`all`"),
        ("alerts mention list everything", "takes no arguments", "mention list"),
    ],
)
async def test_bad_arguments_get_a_private_reply_saying_what_is_accepted(
    env: ChatEnv, text: str, problem: str, accepted: str
) -> None:
    reply = await run(env, text)
    assert reply.status == "error" and reply.ephemeral, reply.text
    assert problem in reply.title and accepted in reply.text, reply.text
    assert await env.rows(m.MentionRule) == []


async def test_rules_need_a_channel_manager_and_are_capped(env: ChatEnv) -> None:
    for text in ("alerts mention @here", "alerts mention remove all", "alerts mention off"):
        assert (await run(env, text, manager=False)).status == "refused"
    for n in range(10):
        assert (await run(env, f"alerts mention S0GROUP{n}")).status == "ok"
    over = await run(env, "alerts mention S0GROUP10")
    assert over.status == "error" and "10 mention rules" in over.title
    assert len(await env.rows(m.MentionRule)) == 10


async def test_one_channel_cannot_remove_another_channels_rule(env: ChatEnv) -> None:
    rule = MentionRuleView(0, "here", "", "@here", "", False, 0.0)
    other = ChannelKey("slack", "T1", "C-other")
    stored, _ = await env.store.add_mention_rule(other, rule, created_by="x", limit=10)
    reply = await run(env, f"alerts mention remove {stored.id}")
    assert reply.status == "error" and len(await env.rows(m.MentionRule)) == 1


# ------------------------------------------------------------------------------------ through the stand-ins
@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    yield s
    await s.engine.dispose()


async def add_rule(store: Store, dest: int, kind: str, target: str = "", **fields: Any) -> None:
    async with store.sessions.begin() as session:
        session.add(
            m.MentionRule(
                destination_id=dest,
                target_kind=kind,
                target_id=target,
                target_label="",
                topic=fields.get("topic", ""),
                official=fields.get("official", False),
                min_score=fields.get("min_score", 0.0),
                created_by="test",
                created_at=datetime.now(UTC),
            )
        )


async def test_discord_alerts_ping_exactly_the_rules_targets_and_digests_never(
    store: Store, shared_dir: Path
) -> None:
    async with DiscordAPI(shared=shared_dir) as api:
        dest = await add_destination(
            store, "discord", DCH, [("natsec", "both", 0.0)], repeat_alerted_in_digest=True
        )
        delivery = build_delivery(store, TOPICS, DISCORD_TOKEN="t", discord_api_base=api.api_base)
        # Routed once before any rule exists: the router has cached this channel's rules.
        await delivery.router.route([await add_story(store, "Before any rule", topics={"natsec": 0.9})])
        await add_rule(store, dest, "group", ROLE, topic="natsec")
        await add_rule(store, dest, "group", ROLE, official=True)  # same role: mentioned once
        await add_rule(store, dest, "here", official=True)
        await add_rule(store, dest, "group", ROLE2, min_score=0.95)
        news = await add_story(store, "Reuters: chip rules coming", topics={"natsec": 0.9})
        rule = await add_story(
            store,
            "Additions to the Entity List",
            topics={"natsec": 0.97},
            outlet="Federal Register",
            official=True,
        )
        await delivery.router.route([news])
        await delivery.router.route([rule])
        await delivery.worker.drain(within=20)
        sends = api.calls("POST", f"/api/v10/channels/{DCH}/messages")
        assert len(sends) == 3 and api.spec_errors == []
        by_title = {c.body["embeds"][0]["title"]: c.body for c in sends}
        before = by_title["Before any rule"]
        assert before["allowed_mentions"] == {"parse": []} and api.pings(before) == ([], False)
        # Unofficial, 0.9: the natsec rule fires; not the official-only ones, not the 0.95 one.
        plain = by_title["Reuters: chip rules coming"]
        assert plain["content"].startswith(f"<@&{ROLE}>\n") and "@here" not in plain["content"]
        assert plain["allowed_mentions"] == {"parse": [], "roles": [ROLE]}
        assert api.pings(plain) == ([ROLE], False)
        # Official, 0.97: every rule fires; each target once, in one line.
        official = by_title["Additions to the Entity List"]
        assert official["content"].startswith(f"<@&{ROLE}> <@&{ROLE2}> @here\n")
        assert official["allowed_mentions"] == {"parse": ["everyone"], "roles": [ROLE, ROLE2]}
        assert api.pings(official) == ([ROLE, ROLE2], True)
        assert "Official source" in official["content"]
        assert [msg["mention_roles"] for msg in api.posted(DCH)] == [[], [ROLE], [ROLE, ROLE2]]
        # The digest lists the same stories again (repeats on) and pings no one.
        now = datetime.now(UTC)
        await delivery.digests.plan(dest, fire=now, now=now, advance=False)
        await delivery.worker.drain(within=20)
        await delivery.worker.stop()
        digest_sends = api.calls("POST", f"/api/v10/channels/{DCH}/messages")[3:]
        assert digest_sends and sum(len(c.body["embeds"]) for c in digest_sends) == 3
        for call in digest_sends:
            assert call.body["allowed_mentions"] == {"parse": []} and api.pings(call.body) == ([], False)
            assert "<@&" not in call.body["content"] and "@here" not in call.body["content"]
        assert api.spec_errors == []
        assert {r.status for r in await deliveries(store)} == {"sent"}


async def test_slack_alerts_carry_the_mention_in_text_and_a_section_and_digests_never(
    store: Store, shared_dir: Path
) -> None:
    async with SlackAPI(shared=shared_dir) as api:
        dest = await add_destination(
            store, "slack", "C1", [("natsec", "both", 0.0)], repeat_alerted_in_digest=True
        )
        await add_rule(store, dest, "group", "S0ANALYSTS", topic="natsec", min_score=0.85)
        await add_rule(store, dest, "here", official=True)
        delivery = build_delivery(store, TOPICS, SLACK_BOT_TOKEN="xoxb-test", slack_api_base=api.api_base)
        low = await add_story(store, "Below the rule's minimum", topics={"natsec": 0.8})
        high = await add_story(store, "Chip rule analysis", topics={"natsec": 0.9})
        official = await add_story(
            store, "Entity List additions", topics={"natsec": 0.7}, outlet="Federal Register", official=True
        )
        for story in (low, high, official):
            await delivery.router.route([story])
        await delivery.worker.drain(within=20)
        posts = [c.body for c in api.method_calls("chat.postMessage")]
        assert len(posts) == 3 and api.spec_errors == []
        texts = {p["text"].split("): ", 1)[1]: p for p in posts}
        assert not texts["Below the rule's minimum"]["text"].startswith("<!")  # 0.8 < 0.85
        assert "<!" not in str(texts["Below the rule's minimum"]["blocks"])
        analysis = texts["Chip rule analysis"]
        assert analysis["text"].startswith("<!subteam^S0ANALYSTS> New story")
        assert analysis["blocks"][0] == {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "<!subteam^S0ANALYSTS>"},
        }
        entity = texts["Entity List additions"]  # official but 0.7: only the official-only @here rule
        assert entity["text"].startswith("<!here> New story") and "subteam" not in entity["text"]
        assert entity["blocks"][0]["text"]["text"] == "<!here>"
        now = datetime.now(UTC)
        await delivery.digests.plan(dest, fire=now, now=now, advance=False)
        await delivery.worker.drain(within=20)
        await delivery.worker.stop()
        digests = [c.body for c in api.method_calls("chat.postMessage")][3:]
        assert digests and all("<!" not in d["text"] and "<!" not in str(d["blocks"]) for d in digests)
        assert api.spec_errors == []
