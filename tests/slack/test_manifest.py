"""manifest.yml is what a Slack admin pastes to create the app: it must describe the app the code
serves (routes, events, the one slash command and its grammar) and ask for exactly the bot scopes
the code needs — every Web API method the Slack adapter calls is covered, and no scope is asked
for that nothing uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.installs import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH
from bot.grammar import VERBS

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read manifest.yml")

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
SLACK_CODE = ROOT / "adapters" / "slack"

# Web API method -> the bot scopes it needs (all of them: e.g. conversations.members needs
# channels:read in public and groups:read in private channels, and Align works in both).
# Methods without a scope need none (views.* act on a trigger_id or the user's own Home tab).
# A method the code starts calling that is missing here fails `test_scopes_cover_calls`: look up
# its scope on its Slack reference page, add it here and to manifest.yml and BOT_SCOPES.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.delete": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.scheduleMessage": frozenset({"chat:write"}),
    "views.open": frozenset(),
    "views.push": frozenset(),
    "views.update": frozenset(),
    "views.publish": frozenset(),
    "users.info": frozenset({"users:read"}),
    "users.list": frozenset({"users:read"}),
    "users.lookupByEmail": frozenset({"users:read.email"}),
    "conversations.members": frozenset({"channels:read", "groups:read"}),
    "conversations.info": frozenset({"channels:read", "groups:read"}),
    "conversations.history": frozenset({"channels:history", "groups:history"}),
    "conversations.open": frozenset({"im:write"}),
    "conversations.join": frozenset({"channels:join"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "files.upload": frozenset({"files:write"}),
    "team.info": frozenset({"team:read"}),
    "reactions.add": frozenset({"reactions:write"}),
    "auth.test": frozenset(),
    # Socket Mode: called with the app-level token, whose connections:write is not a bot scope.
    "apps.connections.open": frozenset(),
    "oauth.v2.access": frozenset(),
}
# Scopes a feature needs rather than a method call.
FEATURE_SCOPES = {
    "commands": "the /align slash command",
    "im:history": "the message.im event: commands typed in the bot's DM (its Messages tab)",
}

# slack_sdk helpers that call more than one method.
SDK_HELPERS = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}
# Bolt's `say(...)` posts with chat.postMessage; `respond(...)` uses the response_url (no scope).
_SAY = re.compile(r"\bsay\(")
_CLIENT_CALL = re.compile(
    r"\.(?P<name>(?:chat|views|users|conversations|files|team|reactions|"
    r"auth|oauth|apps|usergroups|bots|pins|bookmarks)_\w+)\("
)
_API_CALL = re.compile(r"api_call\(\s*[\"'](?P<method>[\w.]+)[\"']")


def _sdk_to_method(name: str) -> tuple[str, ...]:
    """`chat_postMessage` -> `chat.postMessage`; `oauth_v2_access` -> `oauth.v2.access`."""
    if name in SDK_HELPERS:
        return SDK_HELPERS[name]
    return (name.replace("_", "."),)


def _slack_sources() -> list[Path]:
    """adapters/slack, and any other adapter module that talks to Slack through slack_sdk."""
    paths = set(SLACK_CODE.rglob("*.py"))
    for path in (ROOT / "adapters").rglob("*.py"):
        if re.search(r"^\s*(from|import) slack_(sdk|bolt)", path.read_text(), re.MULTILINE):
            paths.add(path)
    return sorted(paths)


def called_methods() -> dict[str, set[str]]:
    """Web API methods the Slack adapter's code calls, each with the files that call it."""
    found: dict[str, set[str]] = {}
    for path in _slack_sources():
        source = path.read_text()
        names: list[str] = []
        for match in _CLIENT_CALL.finditer(source):
            names.extend(_sdk_to_method(match["name"]))
        names.extend(m["method"] for m in _API_CALL.finditer(source))
        if _SAY.search(source):
            names.append("chat.postMessage")
        for method in names:
            found.setdefault(method, set()).add(path.name)
    return found


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_display_information_and_bot_user(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] == "Align"
    assert 0 < len(info["description"]) <= 140  # Slack's limit for the short description
    assert 175 <= len(info["long_description"]) <= 4000  # Slack's bounds for the long one
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    bot = manifest["features"]["bot_user"]
    assert bot["display_name"] == "Align"


def test_slash_command(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/align"
    assert command["description"]
    # Escaped, Slack sends mentions as <@U123|name> and channels as <#C123|name>: the ids the
    # grammar reads, not display names that change.
    assert command["should_escape"] is True
    assert command["url"].endswith("/slack/events")


def test_usage_hint_names_real_verbs(manifest: dict[str, Any]) -> None:
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    verbs = {v.name for v in VERBS}
    named = [part.split()[0] for part in hint.split(" | ")]
    assert len(named) >= 5, hint
    unknown = [word for word in named if word not in verbs]
    assert not unknown, f"usage_hint names verbs the grammar does not have: {unknown}"
    assert "help" in named


def test_routes_events_and_home(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    events = settings["event_subscriptions"]
    assert events["request_url"].endswith("/slack/events")
    assert set(events["bot_events"]) == {
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
        "message.im",
    }
    assert isinstance(settings["socket_mode_enabled"], bool)
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    assert home["messages_tab_enabled"] is True
    # Writable, since Align answers what is typed there (message.im, with im:history).
    assert home["messages_tab_read_only_enabled"] is False
    (redirect,) = manifest["oauth_config"]["redirect_urls"]
    assert redirect.endswith(REDIRECT_PATH)
    assert INSTALL_PATH == "/slack/install"


def test_manifest_scopes_are_what_an_install_asks_for(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) == set(BOT_SCOPES)
    assert "user" not in manifest["oauth_config"]["scopes"]  # Align never acts as a person


def test_scopes_cover_calls(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    calls = called_methods()
    assert "chat.postMessage" in calls, "the scan found no Web API calls at all"
    unmapped = sorted(set(calls) - METHOD_SCOPES.keys())
    assert not unmapped, f"add these methods and their scopes to METHOD_SCOPES: {unmapped}"
    missing = {
        method: sorted(METHOD_SCOPES[method] - scopes)
        for method in calls
        if METHOD_SCOPES[method] - scopes
    }
    assert not missing, f"manifest lacks scopes these calls need: {missing}"


def test_scopes_are_minimal(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = set(FEATURE_SCOPES)
    for method in called_methods():
        needed |= METHOD_SCOPES.get(method, frozenset())
    assert not scopes - needed, f"scopes nothing uses: {sorted(scopes - needed)}"


def test_the_scan_sees_calls() -> None:
    """The scan itself: each way the code can call the Web API is recognised."""
    sample = (
        "await client.chat_postMessage(channel=c)\n"
        "await self.client.conversations_members(channel=c)\n"
        "await client.files_upload_v2(file=b)\n"
        "await client.api_call('views.publish', json=v)\n"
        "await say(text='x')\n"
    )
    names = [n for m in _CLIENT_CALL.finditer(sample) for n in _sdk_to_method(m["name"])]
    names += [m["method"] for m in _API_CALL.finditer(sample)]
    assert names == [
        "chat.postMessage",
        "conversations.members",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "views.publish",
    ]
    assert _SAY.search(sample)
