"""HTTP test doubles for Slack's Web API and the Bot Framework connector.

Both serve real HTTP on 127.0.0.1 so the bot's real SDK clients are exercised end to end.
"""

from __future__ import annotations

from .bf_connector import WRITE_KINDS, FakeBotConnector, Sent
from .slack_api import (
    Call,
    FakeHttpServer,
    FakeSlackApi,
    InjectedFailure,
    ResponseUrlPost,
    Upload,
    sign_slack_request,
)

__all__ = [
    "WRITE_KINDS",
    "Call",
    "FakeBotConnector",
    "FakeHttpServer",
    "FakeSlackApi",
    "InjectedFailure",
    "ResponseUrlPost",
    "Sent",
    "Upload",
    "sign_slack_request",
]
