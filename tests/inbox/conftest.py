"""The inbox is tested through the real Slack and Teams servers: their fixtures, shared."""

from tests.slack.conftest import slack_server, slack_server_any_db

__all__ = ["slack_server", "slack_server_any_db"]
