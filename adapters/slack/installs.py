"""Where Slack tokens come from: one workspace's bot token, or many workspaces' OAuth installs.

With `SLACK_BOT_TOKEN` Align serves the one workspace that token belongs to. With
`SLACK_CLIENT_ID`/`SLACK_CLIENT_SECRET` instead, any workspace can install it through
`GET /slack/install` → Slack's consent page → `GET /slack/oauth_redirect`; Bolt's OAuth flow
exchanges the code (`oauth.v2.access`, sent to `SLACK_API_URL` like every other Web API call) and
saves the installation, and each later request is authorised with that workspace's stored token.

The installations and the one-time OAuth states live in our own database, in slack-sdk's own
table layout (`SQLAlchemyInstallationStore`, `SQLAlchemyOAuthStateStore`) created by our
migration 0002; the stores never create tables themselves. Bolt's `AsyncApp` wants async stores,
and slack-sdk's async variants need an async driver (aiosqlite/asyncpg) we do not ship, so the
sync stores run on our sync engine in a worker thread behind the async interfaces.

Uninstalling (`app_uninstalled`, or `tokens_revoked` for the bot) deletes that workspace's
installation and bot rows — its tokens — and nothing else: its decisions, items, questions and
polls stay until an admin exports and deletes them.

Wiring, in `adapters/slack/http.py`::

    settings = oauth_settings(app)           # None in single-workspace mode
    bolt = AsyncApp(
        signing_secret=...,
        client=AsyncWebClient(base_url=app.settings.slack_api_url,
                              token=None if settings else app.settings.slack_bot_token),
        oauth_settings=settings,
    )
    if settings is not None:
        bolt.enable_token_revocation_listeners()  # app_uninstalled / tokens_revoked

Bolt hands `client` to its OAuth flow, so the token exchange goes to `SLACK_API_URL` too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

if TYPE_CHECKING:
    from adapters.bootstrap import App

log = logging.getLogger("align.slack.installs")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_EXPIRATION_SECONDS = 600

BOT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "users:read",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "files:write",
    "im:history",
)
"""The bot scopes an install asks for; manifest.yml lists the same (tests/slack/test_manifest.py
checks both against the Web API methods the Slack adapter calls)."""


def multi_workspace(app: App) -> bool:
    """OAuth installs when a client id and secret are configured (they win over a bot token)."""
    return bool(app.settings.slack_client_id and app.settings.slack_client_secret)


class ThreadedInstallationStore(AsyncInstallationStore):
    """slack-sdk's SQLAlchemy installation store on our sync engine, awaited from a thread."""

    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return self.store.logger

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.store.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.store.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.store.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.store.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        log.info("deleting Slack tokens of enterprise=%s team=%s", enterprise_id, team_id)
        await asyncio.to_thread(self.store.delete_all, enterprise_id=enterprise_id, team_id=team_id)


class ThreadedOAuthStateStore(AsyncOAuthStateStore):
    """slack-sdk's SQLAlchemy OAuth state store on our sync engine, awaited from a thread."""

    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return self.store.logger

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        return await asyncio.to_thread(self.store.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


def installation_store(app: App) -> ThreadedInstallationStore | None:
    """The store of OAuth installs on our database; None in single-workspace (bot token) mode,
    where there is no stored token to remove on uninstall."""
    if not multi_workspace(app):
        return None
    return ThreadedInstallationStore(
        SQLAlchemyInstallationStore(client_id=app.settings.slack_client_id, engine=app.db.engine)
    )


def state_store(app: App) -> ThreadedOAuthStateStore:
    """One-time OAuth `state` values, on our database so any server process can consume them."""
    return ThreadedOAuthStateStore(
        SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_SECONDS, engine=app.db.engine)
    )


def oauth_settings(app: App) -> AsyncOAuthSettings | None:
    """Bolt's OAuth settings for multi-workspace installs, or None unless id and secret are set.

    `authorization_url` stays Slack's (the installer's browser goes there); the code exchange is
    made by the AsyncApp's own `client`, whose base_url is `SLACK_API_URL`.
    """
    store = installation_store(app)
    if store is None:
        return None
    settings = AsyncOAuthSettings(
        client_id=app.settings.slack_client_id,
        client_secret=app.settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=state_store(app),
        state_expiration_seconds=STATE_EXPIRATION_SECONDS,
        logger=log,
    )
    # Bolt looks the token up in the store on every request, then calls auth.test with it unless
    # it has seen that token before. Caching by token is safe: an uninstalled workspace has no
    # token left to look up, and a reinstall brings a new one.
    settings.authorize.cache_enabled = True  # type: ignore[attr-defined]
    return settings


__all__ = [
    "BOT_SCOPES",
    "INSTALL_PATH",
    "REDIRECT_PATH",
    "ThreadedInstallationStore",
    "ThreadedOAuthStateStore",
    "installation_store",
    "multi_workspace",
    "oauth_settings",
    "state_store",
]
