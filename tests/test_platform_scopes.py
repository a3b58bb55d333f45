"""Every Slack Web API method and every Discord REST call the code makes is covered by the scopes
the manifest asks for and the permissions the invite URL asks for (robustness issue, item 4): a
missing one would turn a lost answer into a failed send instead of a reconciled one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import discord

from bot.platforms.discord_app import PERMISSIONS
from bot.platforms.slack_app import BOT_SCOPES

REPO = Path(__file__).resolve().parent.parent
SLACK_CALL = re.compile(r"\.(chat|conversations|users|files|reactions|pins)_([A-Za-z]+)\(")
DISCORD_CALL = re.compile(r"\.http\.([a-z_]+)\(")
# discord.py HTTPClient method -> the permissions Discord checks for it
DISCORD_NEEDS = {
    "send_message": ("view_channel", "send_messages", "embed_links", "attach_files"),
    "start_thread_with_message": ("create_public_threads", "send_messages_in_threads"),
    "logs_from": ("view_channel", "read_message_history"),
}
# Calls newer than the frozen 2020 spec -> the bot scopes their reference pages name.
# files_upload_v2 is slack_sdk's wrapper of files.getUploadURLExternal + files.completeUploadExternal
# (https://docs.slack.dev/reference/methods/files.getUploadURLExternal/: bot scope files:write).
SLACK_AFTER_SPEC = {"/files.upload_v2": {"files:write"}}
# A channel may be public or private: history must work in both.
SLACK_ALL_OF = {"channels:history", "groups:history"}


def code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "bot").rglob("*.py"))


def test_every_slack_method_called_is_covered_by_the_manifest_scopes(shared_dir: Path) -> None:
    spec = json.loads((shared_dir / "specs" / "slack" / "slack_web_openapi_v2.json").read_text())
    called = {f"/{family}.{method}" for family, method in SLACK_CALL.findall(code())}
    assert {"/chat.postMessage", "/conversations.history", "/users.info"} <= called
    for path in sorted(called):
        if path in SLACK_AFTER_SPEC:
            assert SLACK_AFTER_SPEC[path] <= set(BOT_SCOPES), (path, BOT_SCOPES)
            continue
        operations = spec["paths"][path]
        scopes = {
            s
            for op in operations.values()
            for sec in op.get("security", [])
            for s in sec.get("slackAuth", [])
        }
        bot_scopes = {s.removesuffix(":bot") for s in scopes if not s.endswith(":user")}
        bot_scopes -= {"im:history", "mpim:history"}  # the bot posts in channels, not DMs
        needed = bot_scopes & SLACK_ALL_OF or bot_scopes
        if needed & SLACK_ALL_OF:
            assert needed <= set(BOT_SCOPES), (path, needed)
        else:
            assert needed & set(BOT_SCOPES), (path, needed, BOT_SCOPES)


def test_every_discord_call_is_covered_by_the_invite_permissions() -> None:
    called = set(DISCORD_CALL.findall(code()))
    assert {"send_message", "logs_from"} <= called
    for method in called:
        assert method in DISCORD_NEEDS, f"add the permissions {method!r} needs to DISCORD_NEEDS"
        for permission in DISCORD_NEEDS[method]:
            assert getattr(PERMISSIONS, permission), (method, permission)
    assert isinstance(PERMISSIONS, discord.Permissions)
