"""The Discord adapter: a discord.py client with one app-command group, `/watch`.

Subcommands map one-to-one onto the platform-neutral handlers; `digest`, `alerts`, `sources` and
`keywords` are subcommand groups. Topics and time zones autocomplete; modes, frequencies and on/off
switches are fixed choices, and the alert cap is an integer range, so Discord validates them too.

Permissions: Discord only lets a *top-level* command carry ``default_member_permissions``, so with one
`/watch` group it would hide the reading commands from ordinary members too. By default the group is
visible to everyone and each configuration subcommand checks Manage Channels at run time (from the
interaction's resolved member permissions); ``FW_DISCORD_HIDE_FROM_MEMBERS=true`` additionally sets
Manage Channels as the group's default member permissions (server admins can adjust it per role under
Server Settings → Integrations).

The REST base comes from ``FW_DISCORD_API_BASE`` through ``discord.http.Route.BASE``, the one place
discord.py builds every URL from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import discord
from discord import app_commands
from discord.http import Route
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.store.chat import ALERT_CAP_MAX, ChannelKey
from handlers import Command, HandlerDeps, Invocation, Reply, Rights, handle
from handlers.alerts import DEFAULT_CAP
from handlers.digest import search_timezones
from handlers.feedback import FeedbackClick, parse_discord_custom_id, record_feedback
from handlers.model import error

log = logging.getLogger(__name__)

MANAGE_RIGHT = "the Manage Channels permission"
SCOPES = ("bot", "applications.commands")
# What the bot needs in a channel: read it, post embeds, open a thread per digest and post there,
# and read history (to find its own earlier messages when following up on a story).
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    create_public_threads=True,
    send_messages_in_threads=True,
    read_message_history=True,
    attach_files=True,  # the weekly digest's trend chart is an attached PNG
)
REPLY_WITHIN = 2.0  # seconds; Discord's limit for the first response is 3
SHOWN_TO_CHANNEL = "Done — the answer is posted for the whole channel below."
_COLOURS = {"ok": 0x2E7D32, "info": 0x1565C0, "error": 0xE65100, "refused": 0xC62828}
_ICONS = {"ok": "✅", "info": "ℹ️", "error": "⚠️", "refused": "⛔"}
_DESCRIPTION_LIMIT = 4000  # of Discord's 4096, leaving room for the "more lines" note


def invite_url(application_id: int | str) -> str:
    """The OAuth2 URL that adds the bot to a server with exactly the scopes and permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=SCOPES)


def reply_embed(reply: Reply) -> discord.Embed:
    """A reply model as one embed (title ≤ 256, description ≤ 4096, ≤ 10 link fields)."""
    title = f"{_ICONS[reply.status]} {reply.title}"
    if len(title) > 256:
        title = title[:255] + "…"
    description = ""
    for index, line in enumerate(reply.lines):
        candidate = f"{description}\n{line}" if description else line
        if len(candidate) > _DESCRIPTION_LIMIT:
            # Said explicitly rather than cut silently; `status` is the only reply this long.
            description += f"\n… and {len(reply.lines) - index} more lines."
            break
        description = candidate
    embed = discord.Embed(title=title, description=description or None, colour=_COLOURS[reply.status])
    for link in reply.links[:10]:
        value = f"[open]({link.url})" if link.url else "(no link)"
        if link.detail:
            value += f" · {link.detail}"
        embed.add_field(name=link.text[:256] or "untitled", value=value[:1024], inline=False)
    return embed


def mention_args(
    role: discord.Role | None, here: bool, topic: str | None, official: bool, min_score: float | None
) -> tuple[str, ...]:
    """The `/watch alerts mention` options as the words Slack users type, so one parser serves
    both platforms. Both or neither of role and here reach the handler as such and are refused
    there with what would be accepted."""
    args = ([f"<@&{role.id}>"] if role is not None else []) + (["here"] if here else [])
    if topic:
        args += ["topic", topic]
    if official:
        args.append("official")
    if min_score is not None:
        args += ["min-score", f"{min_score:g}"]
    return tuple(args)


class DiscordCommands:
    """Builds the `/watch` command tree and turns interactions into handler calls."""

    def __init__(
        self,
        deps: HandlerDeps,
        *,
        guild_id: int | None = None,
        hide_from_members: bool = False,
        reply_within: float = REPLY_WITHIN,
    ) -> None:
        self.deps = deps
        self.guild_id = guild_id
        self.hide_from_members = hide_from_members
        self.reply_within = reply_within

    # ------------------------------------------------------------------ running a command
    def command(self, interaction: discord.Interaction, invocation: Invocation) -> Command:
        channel = interaction.channel
        return Command(
            platform="discord",
            workspace_id=str(interaction.guild_id or ""),
            channel_id=str(interaction.channel_id or ""),
            user_id=str(interaction.user.id),
            rights=Rights.fixed(interaction.permissions.manage_channels, MANAGE_RIGHT),
            invocation=invocation,
            channel_name=str(getattr(channel, "name", "") or ""),
            user_name=interaction.user.name,
        )

    async def run(self, interaction: discord.Interaction, invocation: Invocation) -> None:
        task = asyncio.ensure_future(handle(self.deps, self.command(interaction, invocation)))
        finished, _ = await asyncio.wait({task}, timeout=self.reply_within)
        if task in finished:
            reply = task.result()
            await interaction.response.send_message(
                embed=reply_embed(reply),
                ephemeral=reply.ephemeral,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return
        # Slow (a feed fetch, a digest, a busy database): "thinking…" now, the answer as a
        # follow-up. The first follow-up keeps the deferral's visibility, which must be chosen
        # before the answer is known; private is the safe choice (errors stay private), so a
        # change the whole channel should see goes out as a second, public follow-up.
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await task
        none = discord.AllowedMentions.none()
        if reply.ephemeral:
            await interaction.followup.send(embed=reply_embed(reply), ephemeral=True, allowed_mentions=none)
            return
        await interaction.followup.send(SHOWN_TO_CHANNEL, ephemeral=True, allowed_mentions=none)
        await interaction.followup.send(embed=reply_embed(reply), ephemeral=False, allowed_mentions=none)

    # ------------------------------------------------------------------ feedback controls
    async def component(self, interaction: discord.Interaction) -> None:
        """A click on an alert's "Not relevant" button or "Wrong topic…" menu."""
        if interaction.type is not discord.InteractionType.component or not isinstance(
            interaction.data, dict
        ):
            return
        data: dict[str, Any] = dict(interaction.data)
        parsed = parse_discord_custom_id(
            str(data.get("custom_id") or ""), [str(v) for v in data.get("values") or []]
        )
        if parsed is None:
            return  # not one of ours
        delivery_id, kind, topics = parsed
        if self.deps.feedback is None:
            reply = error("Feedback is not enabled in this installation.")
        else:
            click = FeedbackClick(
                "discord",
                str(interaction.channel_id or ""),
                str(interaction.user.id),
                delivery_id,
                kind,
                topics,
            )
            reply = await record_feedback(self.deps.feedback, click, tuple(self.deps.topics))
        await interaction.response.send_message(
            embed=reply_embed(reply), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    # ------------------------------------------------------------------ autocomplete
    async def topic_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        names = [t for t in self.deps.topics if typed in t]
        return [app_commands.Choice(name=f"{t} — {self.deps.topics[t]}"[:100], value=t) for t in names][:25]

    async def unsubscribe_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        choices = await self.topic_choices(interaction, current)
        if "all".startswith(current.strip().lower()):
            choices.insert(0, app_commands.Choice(name="all — every topic", value="all"))
        return choices[:25]

    async def channel_source_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The feeds this channel added (the only ones it may pause), matching what was typed."""
        key = ChannelKey("discord", str(interaction.guild_id or ""), str(interaction.channel_id or ""))
        typed = current.strip().casefold()
        state = await self.deps.store.channel_state(key)
        return [
            app_commands.Choice(name=f"{s.id} — {s.name}"[:100], value=str(s.id))
            for s in state.sources
            if s.origin == "channel" and (typed in s.name.casefold() or typed == str(s.id))
        ][:25]

    async def timezone_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=z, value=z) for z in search_timezones(current)]

    # ------------------------------------------------------------------ the tree
    def group(self) -> app_commands.Group:
        run = self.run
        watch = app_commands.Group(
            name="watch",
            description="Frontier Watch: AI distillation, AI IP, AI national security and model releases",
            guild_only=True,
            # Server channels only: a DM has no channel managers and nothing to subscribe.
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
            default_permissions=discord.Permissions(manage_channels=True) if self.hide_from_members else None,
        )

        @watch.command(name="subscribe", description="Follow a topic in this channel (channel managers)")
        @app_commands.describe(
            topic="The topic to follow",
            mode="Alerts as stories arrive, the digest, or both (default both)",
            min_score="Only stories scoring at least this (0-1; default: the topic's own threshold)",
        )
        @app_commands.autocomplete(topic=self.topic_choices)
        async def subscribe(
            interaction: discord.Interaction,
            topic: str,
            mode: Literal["alerts", "digest", "both"] | None = None,
            min_score: app_commands.Range[float, 0.0, 1.0] | None = None,
        ) -> None:
            args = [topic] + ([mode] if mode else []) + ([f"{min_score:g}"] if min_score is not None else [])
            await run(interaction, Invocation("subscribe", None, tuple(args)))

        @watch.command(name="unsubscribe", description="Stop following a topic, or all (channel managers)")
        @app_commands.describe(topic="The topic to stop following, or 'all'")
        @app_commands.autocomplete(topic=self.unsubscribe_choices)
        async def unsubscribe(interaction: discord.Interaction, topic: str) -> None:
            await run(interaction, Invocation("unsubscribe", None, (topic,)))

        @watch.command(name="topics", description="The topics, and which ones this channel follows")
        async def topics(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("topics"))

        @watch.command(
            name="search",
            description='Stored stories ranked by match: words, "phrases", topic:natsec, since:2w',
        )
        @app_commands.describe(words='Words to look for; "quote" phrases')
        async def search(interaction: discord.Interaction, words: app_commands.Range[str, 1, 200]) -> None:
            await run(interaction, Invocation("search", None, tuple(words.split()), words))

        @watch.command(
            name="pause", description="No alerts or digests here until /watch resume (channel managers)"
        )
        async def pause(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("pause"))

        @watch.command(
            name="resume", description="Alerts and digests here again, from now on (channel managers)"
        )
        async def resume(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("resume"))

        @watch.command(name="status", description="Everything about this channel: topics, digest, sources")
        async def status(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("status"))

        @watch.command(name="help", description="How to use Frontier Watch")
        async def help_(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("help"))

        digest = app_commands.Group(name="digest", description="This channel's digest", parent=watch)

        @digest.command(name="now", description="Post this channel's digest now (channel managers)")
        async def digest_now(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("digest", "now"))

        @digest.command(name="time", description="When the digest arrives (channel managers)")
        @app_commands.describe(time="24-hour time, HH:MM", timezone="IANA time zone, e.g. Europe/Berlin")
        @app_commands.autocomplete(timezone=self.timezone_choices)
        async def digest_time(
            interaction: discord.Interaction,
            time: app_commands.Range[str, 1, 5],
            timezone: app_commands.Range[str, 1, 64] | None = None,
        ) -> None:
            await run(interaction, Invocation("digest", "time", (time, *([timezone] if timezone else []))))

        @digest.command(name="frequency", description="Daily, weekly or off (channel managers)")
        @app_commands.describe(frequency="How often", day="For weekly digests: the day (default Monday)")
        async def digest_frequency(
            interaction: discord.Interaction,
            frequency: Literal["daily", "weekly", "off"],
            day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None,
        ) -> None:
            await run(interaction, Invocation("digest", "frequency", (frequency, *([day] if day else []))))

        @digest.command(
            name="quiet", description="Post a one-line 'quiet day' when a digest is empty (channel managers)"
        )
        @app_commands.describe(notice="on: a one-line notice when there is nothing; off: post nothing")
        async def digest_quiet(interaction: discord.Interaction, notice: Literal["on", "off"]) -> None:
            await run(interaction, Invocation("digest", "quiet", (notice,)))

        @digest.command(
            name="repeats",
            description="Also list stories already alerted here in the digest (channel managers)",
        )
        @app_commands.describe(repeats="on: list them again in the digest; off: leave them out (default)")
        async def digest_repeats(interaction: discord.Interaction, repeats: Literal["on", "off"]) -> None:
            await run(interaction, Invocation("digest", "repeats", (repeats,)))

        alerts = app_commands.Group(
            name="alerts", description="This channel's immediate alerts", parent=watch
        )

        @alerts.command(
            name="cap", description="Most alerts per hour; more go to the digest (channel managers)"
        )
        @app_commands.describe(
            per_hour=f"0 to {ALERT_CAP_MAX}; 0 = no alerts, everything goes to the digest "
            f"(default {DEFAULT_CAP})"
        )
        async def alerts_cap(
            interaction: discord.Interaction, per_hour: app_commands.Range[int, 0, ALERT_CAP_MAX]
        ) -> None:
            await run(interaction, Invocation("alerts", "cap", (str(per_hour),)))

        @alerts.command(
            name="mention",
            description="Ping a role or @here on matching alerts, never in digests (channel managers)",
        )
        @app_commands.describe(
            role="The role to ping",
            here="Ping @here (members online) instead of a role",
            topic="Only alerts on this topic (default: any of this channel's alert topics)",
            official="Only stories from official sources (regulators, committees, labs' own feeds)",
            min_score="Only alerts scoring at least this on the topic (above 0, at most 1)",
        )
        @app_commands.autocomplete(topic=self.topic_choices)
        async def alerts_mention(
            interaction: discord.Interaction,
            role: discord.Role | None = None,
            here: bool = False,
            topic: str | None = None,
            official: bool = False,
            min_score: app_commands.Range[float, 0.0, 1.0] | None = None,
        ) -> None:
            await run(
                interaction,
                Invocation("alerts", "mention", mention_args(role, here, topic, official, min_score)),
            )

        @alerts.command(name="mention-list", description="This channel's mention rules")
        async def alerts_mention_list(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("alerts", "mention-list"))

        @alerts.command(name="mention-remove", description="Remove a mention rule, or all (channel managers)")
        @app_commands.describe(rule="The rule's id from /watch alerts mention-list, or 'all'")
        async def alerts_mention_remove(
            interaction: discord.Interaction, rule: app_commands.Range[str, 1, 12]
        ) -> None:
            await run(interaction, Invocation("alerts", "mention-remove", (rule,)))

        sources = app_commands.Group(name="sources", description="Feeds this channel adds", parent=watch)

        @sources.command(name="list", description="Feeds this channel added, with their health")
        async def sources_list(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("sources", "list"))

        @sources.command(name="add", description="Watch an RSS/Atom/JSON feed here (channel managers)")
        @app_commands.describe(url="The feed's URL")
        async def sources_add(
            interaction: discord.Interaction, url: app_commands.Range[str, 1, 2000]
        ) -> None:
            await run(interaction, Invocation("sources", "add", (url,), url))

        @sources.command(name="remove", description="Stop watching a feed (channel managers)")
        @app_commands.describe(id="The source's id from /watch sources list")
        async def sources_remove(interaction: discord.Interaction, id: app_commands.Range[int, 1]) -> None:
            await run(interaction, Invocation("sources", "remove", (str(id),)))

        @sources.command(
            name="pause", description="Stop polling a feed this channel added (channel managers)"
        )
        @app_commands.describe(source="The feed's id or name, from /watch sources list")
        @app_commands.autocomplete(source=self.channel_source_choices)
        async def sources_pause(
            interaction: discord.Interaction, source: app_commands.Range[str, 1, 200]
        ) -> None:
            await run(interaction, Invocation("sources", "pause", tuple(source.split()), source))

        @sources.command(name="resume", description="Poll a paused feed again, now (channel managers)")
        @app_commands.describe(source="The feed's id or name, from /watch sources list")
        @app_commands.autocomplete(source=self.channel_source_choices)
        async def sources_resume(
            interaction: discord.Interaction, source: app_commands.Range[str, 1, 200]
        ) -> None:
            await run(interaction, Invocation("sources", "resume", tuple(source.split()), source))

        keywords = app_commands.Group(
            name="keywords", description="Narrow this channel's topics", parent=watch
        )

        @keywords.command(name="add", description="Add keywords; a leading - excludes (channel managers)")
        @app_commands.describe(keywords='e.g. nvidia "export controls" -whisky')
        async def keywords_add(
            interaction: discord.Interaction, keywords: app_commands.Range[str, 1, 500]
        ) -> None:
            await run(interaction, Invocation("keywords", "add", tuple(keywords.split()), keywords))

        @keywords.command(name="remove", description="Remove keywords (channel managers)")
        @app_commands.describe(keywords="The keywords to remove")
        async def keywords_remove(
            interaction: discord.Interaction, keywords: app_commands.Range[str, 1, 500]
        ) -> None:
            await run(interaction, Invocation("keywords", "remove", tuple(keywords.split()), keywords))

        @keywords.command(name="list", description="This channel's keywords")
        async def keywords_list(interaction: discord.Interaction) -> None:
            await run(interaction, Invocation("keywords", "list"))

        return watch

    def install(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        guild = discord.Object(self.guild_id) if self.guild_id else None
        tree.add_command(self.group(), guild=guild)

    async def sync(self, tree: app_commands.CommandTree[discord.Client]) -> list[app_commands.AppCommand]:
        """Guild sync is instant (development); global sync can take a while to show everywhere."""
        guild = discord.Object(self.guild_id) if self.guild_id else None
        return await tree.sync(guild=guild)


def build_client(
    settings: Settings, deps: HandlerDeps
) -> tuple[discord.Client, app_commands.CommandTree[discord.Client], DiscordCommands]:
    Route.BASE = settings.discord_api_base.rstrip("/")
    # Interactions arrive without privileged intents; `guilds` keeps channel names for replies.
    client = discord.Client(intents=discord.Intents(guilds=True))
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    commands = DiscordCommands(
        deps, guild_id=settings.discord_guild_id, hide_from_members=settings.discord_hide_from_members
    )
    commands.install(tree)

    async def on_interaction(interaction: discord.Interaction) -> None:
        # Slash commands go through the tree; clicks on alert controls come here.
        try:
            await commands.component(interaction)
        except Exception:  # one bad click must not take the gateway down
            log.exception("discord: handling a component click failed")

    client.event(on_interaction)
    return client, tree, commands


class DiscordService:
    """The gateway connection that receives `/watch` interactions.

    Only one process may hold it (every gateway session receives every interaction): it runs in
    the worker (`frontierwatch run`), never in `frontierwatch serve`, and on PostgreSQL a session
    advisory lock elects one holder among several replicas (the others keep delivering over REST
    and take over when the holder's connection drops). Discord being down at start, or later,
    never stops the process: the service retries with back-off while polling and delivery go on.
    """

    name = "discord"
    LOCK_KEY = 724202  # pg advisory lock id of the gateway holder
    MAX_DELAY = 300.0  # back-off cap while Discord is unreachable
    LOCK_RETRY = 30.0  # how often a standby replica asks for the gateway lock

    def __init__(self, settings: Settings, deps: HandlerDeps, engine: AsyncEngine | None = None) -> None:
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        self._token = settings.discord_token
        self._settings, self._deps, self._engine = settings, deps, engine
        self.client, self.tree, self.commands = build_client(settings, deps)
        self._task: asyncio.Task[None] | None = None
        self.leader = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="discord-gateway")

    async def _run(self) -> None:
        delay = min(5.0, self.MAX_DELAY)
        while True:
            try:
                async with self._leadership():
                    await self._connect()
                return  # closed by stop()
            except discord.LoginFailure:
                log.error("discord: DISCORD_TOKEN was refused; /watch commands are off until it is fixed")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Discord down, network, a 5xx at login: try again later
                log.warning("discord: %s; retrying in %.0fs", _describe(exc), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.MAX_DELAY)
            if self.client.is_closed():
                self.client, self.tree, self.commands = build_client(self._settings, self._deps)

    async def _connect(self) -> None:
        await self.client.login(self._token.get_secret_value())
        synced = await self.commands.sync(self.tree)
        where = f"guild {self.commands.guild_id}" if self.commands.guild_id else "all servers"
        log.info("discord: synced %d command(s) to %s", len(synced), where)
        if self.client.application_id is not None:
            log.info("discord: invite the bot with %s", invite_url(self.client.application_id))
        await self.client.connect(reconnect=True)

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[None]:
        """Hold the gateway lock for as long as the body runs (PostgreSQL only)."""
        if self._engine is None or self._engine.dialect.name != "postgresql":
            self.leader.set()
            yield
            return
        async with self._engine.connect() as conn:
            while not await conn.scalar(text(f"SELECT pg_try_advisory_lock({self.LOCK_KEY})")):
                await conn.rollback()  # no transaction left open while we wait
                await asyncio.sleep(self.LOCK_RETRY)
            self.leader.set()
            log.info("discord: this replica holds the gateway")
            try:
                yield
            finally:
                self.leader.clear()
                with contextlib.suppress(Exception):
                    await conn.scalar(text(f"SELECT pg_advisory_unlock({self.LOCK_KEY})"))

    async def stop(self) -> None:
        await self.client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 10)
            self._task = None


def _describe(exc: BaseException) -> str:
    text_ = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text_}"[:200]


if __name__ == "__main__":  # `python -m bot.platforms.discord_app`: print the invite URL
    import sys

    from bot.settings import load_settings

    async def _print_invite() -> None:
        settings = load_settings()
        if settings.discord_token is None:
            sys.exit("set DISCORD_TOKEN first")
        Route.BASE = settings.discord_api_base.rstrip("/")
        client = discord.Client(intents=discord.Intents.none())
        try:
            await client.login(settings.discord_token.get_secret_value())
            assert client.application_id is not None
            print(invite_url(client.application_id))
        finally:
            await client.close()

    asyncio.run(_print_invite())
