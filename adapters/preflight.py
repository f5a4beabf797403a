"""The start-up check: what `align serve` will run, decided and verified before it runs.

`plan` reads the settings and the serve flags and decides, per platform, what is on and how
(Slack over HTTP or Socket Mode, one bot token or OAuth installs; Teams with an app id or the
Emulator), where to listen, and which configuration is half done. A half-configured platform is
a `ConfigError` whose message is one sentence naming the variable to set; `align serve` and
`align doctor` print that sentence and exit non-zero instead of starting without the platform.

`verify` then asks the platforms what they think of the credentials: Slack's `auth.test` for the
bot token (at SLACK_API_URL), `apps.connections.open` for the app token when `align doctor`
checks Socket Mode. A token Slack refuses is a `ConfigError` too; Slack out of reach is a
`Problem` — `align serve` starts anyway (Slack may come back; Teams may not need it), `align
doctor` reports it and exits 1.

Nothing here is Slack's or Teams' business logic: it only reads configuration and asks "who am
I?"; the platform packages do the rest.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.settings import Settings

ROLES = ("all", "web", "worker")
APP_TYPES = {
    "multitenant": "MultiTenant",
    "singletenant": "SingleTenant",
    "userassignedmsi": "UserAssignedMSI",
}
CHECK_TIMEOUT = 10.0

# Answers of Slack's Web API that mean the token itself is wrong: no retry can fix them.
REFUSED = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
        "invalid_token",
    }
)


class ConfigError(Exception):
    """A configuration the operator must fix; the message is one sentence saying how."""


@dataclass(frozen=True)
class SlackPlan:
    mode: str  # "http", "socket" or "sender" (a worker: delivers, receives nothing)
    installs: bool  # tokens from OAuth installs (SLACK_CLIENT_ID/SECRET), else SLACK_BOT_TOKEN

    @property
    def needs_public_http(self) -> bool:
        # Installs come back through the browser to /slack/oauth_redirect, Socket Mode or not.
        return self.mode == "http" or (self.mode == "socket" and self.installs)


@dataclass(frozen=True)
class TeamsPlan:
    emulator: bool
    app_id: str = ""
    app_type: str = "MultiTenant"
    tenant: str = ""


@dataclass(frozen=True)
class Plan:
    role: str
    slack: SlackPlan | None
    teams: TeamsPlan | None
    host: str
    port: int

    @property
    def inbound(self) -> bool:
        return self.role in ("web", "all")


@dataclass
class Report:
    """One line per part (`slack: …`, `teams: …`); problems are what `doctor` fails on."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------- deciding


def plan(
    settings: Settings,
    *,
    role: str = "all",
    socket: bool = False,
    teams_emulator: bool = False,
    host: str | None = None,
    port: int | None = None,
) -> Plan:
    """What to run, or a ConfigError saying what is missing. Reads nothing but `settings`."""
    if role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, not {role!r}.")
    if not settings.secret:
        # The console's fallback key is derived from the database URL; on a shared server
        # anyone who knows the URL could recompute who cast an anonymous ballot.
        raise ConfigError(
            "ALIGN_SECRET is not set. Set it to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`): it keys anonymous "
            "ballots and signs webhooks."
        )
    slack = _slack(settings, socket=socket, inbound=role != "worker")
    teams = _teams(settings, emulator=teams_emulator)
    explicit = host or settings.host
    inbound = role != "worker"
    if teams is not None and teams.emulator and inbound:
        if explicit and not is_loopback(explicit):
            raise ConfigError(
                f"--teams-emulator serves /api/messages without authentication, so it listens "
                f"on 127.0.0.1 only; drop --host/ALIGN_HOST ({explicit}) or set it to 127.0.0.1."
            )
        chosen = explicit or "127.0.0.1"
    else:
        public = inbound and (
            (slack is not None and slack.needs_public_http)
            or (teams is not None and not teams.emulator)
        )
        chosen = explicit or ("0.0.0.0" if public else "127.0.0.1")
    return Plan(role=role, slack=slack, teams=teams, host=chosen, port=port or settings.port)


def _slack(settings: Settings, *, socket: bool, inbound: bool) -> SlackPlan | None:
    s = settings
    if socket and inbound and not s.slack_app_token:
        raise ConfigError(
            "`align serve --socket` needs SLACK_APP_TOKEN: an app-level token (xapp-…) with the "
            "connections:write scope, from the app's Basic Information → App-Level Tokens."
        )
    if not any(
        (
            s.slack_signing_secret,
            s.slack_bot_token,
            s.slack_app_token,
            s.slack_client_id,
            s.slack_client_secret,
        )
    ):
        return None
    installs = bool(s.slack_client_id or s.slack_client_secret)
    if installs and not (s.slack_client_id and s.slack_client_secret):
        missing = "SLACK_CLIENT_SECRET" if s.slack_client_id else "SLACK_CLIENT_ID"
        raise ConfigError(
            f"Set {missing} too: installs in many workspaces need both SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET (the app's Basic Information → App Credentials)."
        )
    if not installs and not s.slack_bot_token:
        raise ConfigError(
            "Set SLACK_BOT_TOKEN: the Bot User OAuth Token (xoxb-…) from the app's Install App "
            "page (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for installs in many workspaces)."
        )
    if s.slack_bot_token and not s.slack_bot_token.startswith("xoxb-"):
        raise ConfigError(
            f"SLACK_BOT_TOKEN must be a bot token starting xoxb-, not {_kind(s.slack_bot_token)}: "
            "copy the Bot User OAuth Token from the app's Install App page."
        )
    if s.slack_app_token and not s.slack_app_token.startswith("xapp-"):
        raise ConfigError(
            f"SLACK_APP_TOKEN must be an app-level token starting xapp-, not "
            f"{_kind(s.slack_app_token)}: create one under Basic Information → App-Level Tokens."
        )
    if not inbound:
        return SlackPlan(mode="sender", installs=installs)
    if socket:
        return SlackPlan(mode="socket", installs=installs)
    if not s.slack_signing_secret:
        if s.slack_app_token:
            raise ConfigError(
                "SLACK_APP_TOKEN is set but not SLACK_SIGNING_SECRET: run `align serve --socket` "
                "for Socket Mode, or set SLACK_SIGNING_SECRET to receive Slack over HTTP."
            )
        raise ConfigError(
            "Set SLACK_SIGNING_SECRET (the app's Basic Information → App Credentials) to "
            "receive Slack over HTTP, or use Socket Mode: SLACK_APP_TOKEN and `align serve "
            "--socket`."
        )
    return SlackPlan(mode="http", installs=installs)


def _kind(token: str) -> str:
    """A token's prefix only (`xoxp-…`): enough to see the mix-up, never the secret."""
    head = token.split("-", 1)[0]
    return f"{head}-…" if "-" in token and len(head) <= 5 else "something else"


def _teams(settings: Settings, *, emulator: bool) -> TeamsPlan | None:
    s = settings
    if emulator:
        if s.microsoft_app_id:
            raise ConfigError(
                "--teams-emulator runs /api/messages without authentication, which is not "
                "allowed next to MICROSOFT_APP_ID: unset MICROSOFT_APP_ID, or drop the flag."
            )
        return TeamsPlan(emulator=True)
    if not s.microsoft_app_id:
        given = [
            name
            for name, value in (
                ("MICROSOFT_APP_PASSWORD", s.microsoft_app_password),
                ("MICROSOFT_APP_TENANT_ID", s.microsoft_app_tenant_id),
                ("MICROSOFT_APP_TYPE", s.microsoft_app_type),
            )
            if value
        ]
        if given:
            raise ConfigError(
                f"Set MICROSOFT_APP_ID (the Azure Bot's Microsoft App ID) too: "
                f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} set without it."
            )
        return None
    raw = s.microsoft_app_type.strip()
    if raw and raw.lower() not in APP_TYPES:
        raise ConfigError(
            f"MICROSOFT_APP_TYPE must be MultiTenant, SingleTenant or UserAssignedMSI (as the "
            f"Azure Bot's Configuration page shows it), not {raw!r}."
        )
    tenant = s.microsoft_app_tenant_id.strip()
    if not raw and tenant:
        raise ConfigError(
            "MICROSOFT_APP_TENANT_ID is set but not MICROSOFT_APP_TYPE: set "
            "MICROSOFT_APP_TYPE=SingleTenant for a single-tenant bot (or remove the tenant id)."
        )
    app_type = APP_TYPES[raw.lower()] if raw else "MultiTenant"
    if app_type in ("SingleTenant", "UserAssignedMSI") and not tenant:
        raise ConfigError(
            f"MICROSOFT_APP_TYPE={app_type} needs MICROSOFT_APP_TENANT_ID: the Directory "
            "(tenant) ID on the Azure Bot's Configuration page."
        )
    if app_type != "UserAssignedMSI" and not s.microsoft_app_password:
        raise ConfigError(
            "Set MICROSOFT_APP_PASSWORD: the client secret of the bot's Microsoft App ID "
            "(Azure Bot → Configuration → Manage Password → Certificates & secrets)."
        )
    return TeamsPlan(
        emulator=False,
        app_id=s.microsoft_app_id,
        app_type=app_type,
        tenant=tenant if app_type != "MultiTenant" else "",
    )


# ------------------------------------------------------------------------------- asking


async def verify(
    settings: Settings,
    planned: Plan,
    *,
    session: aiohttp.ClientSession | None = None,
    check_app_token: bool = False,
) -> Report:
    """Ask Slack who the tokens belong to; raise ConfigError when it refuses them."""
    report = Report()
    report.lines.append(_slack_line(planned))
    slack = planned.slack
    if slack is not None and not slack.installs:
        who, problem = await _auth_test(settings, session=session)
        if who:
            report.lines[-1] += f"; {who}"
        if problem:
            report.problems.append(f"slack: {problem}")
    if slack is not None and slack.mode == "socket" and check_app_token:
        problem = await _app_token(settings, session=session)
        if problem:
            report.problems.append(f"slack: {problem}")
    report.lines.append(_teams_line(planned))
    if settings.hand_off:
        report.lines.append(_hand_off_line(planned, settings.worker_nice))
        if settings.database_url.startswith("sqlite"):
            report.problems.append(
                "ALIGN_HAND_OFF on SQLite: the web and worker processes take turns on the "
                "database file's one write lock; use PostgreSQL"
            )
    return report


def _hand_off_line(planned: Plan, nice: int) -> str:
    if planned.role == "web":
        return (
            "requests: recorded and acknowledged here, run by the workers (ALIGN_HAND_OFF); "
            "read commands answered here, in their acknowledgement"
        )
    if planned.role == "worker":
        return "requests: runs those web processes hand off (ALIGN_HAND_OFF)" + (
            f", at nice +{nice} (ALIGN_WORKER_NICE)" if nice else ""
        )
    return "requests: runs those web processes hand off (ALIGN_HAND_OFF), and its own as they come"


def _slack_line(planned: Plan) -> str:
    slack = planned.slack
    if slack is None:
        return "slack: off (no SLACK_* variables set)"
    tokens = "installs via /slack/install (OAuth)" if slack.installs else "one workspace"
    if slack.mode == "socket":
        return f"slack: Socket Mode, {tokens}"
    if slack.mode == "sender":
        return f"slack: delivery only (role {planned.role}), {tokens}"
    return f"slack: HTTP at /slack/events, {tokens}"


def _teams_line(planned: Plan) -> str:
    teams = planned.teams
    if teams is None:
        return "teams: off (MICROSOFT_APP_ID not set; /api/messages answers 404)"
    if teams.emulator:
        return (
            "teams: Bot Framework Emulator at /api/messages without authentication, "
            "listening on loopback only"
        )
    kind = teams.app_type + (f", tenant {teams.tenant}" if teams.tenant else "")
    where = "at /api/messages" if planned.inbound else f"delivery only (role {planned.role})"
    return f"teams: app {teams.app_id} ({kind}) {where}"


def _client(
    settings: Settings, token: str, session: aiohttp.ClientSession | None
) -> AsyncWebClient:
    # No retry handlers: a start-up check answers at once rather than retrying an outage.
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=int(CHECK_TIMEOUT),
        session=session,
        retry_handlers=[],
    )


async def _auth_test(
    settings: Settings, *, session: aiohttp.ClientSession | None
) -> tuple[str, str]:
    """(`workspace … as @bot`, "") or ("", why Slack could not be asked)."""
    client = _client(settings, settings.slack_bot_token, session)
    try:
        who = await client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown_error")
        if error in REFUSED:
            raise ConfigError(
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token "
                "(xoxb-…) from the app's Install App page again, or reinstall the app."
            ) from exc
        return "", f"auth.test answered {error}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return "", (
            f"could not reach Slack at {settings.slack_api_url} to check SLACK_BOT_TOKEN "
            f"({describe(exc)})"
        )
    team, user = who.get("team"), who.get("user")
    return f"workspace {team} ({who.get('team_id')}) as @{user} ({who.get('user_id')})", ""


async def _app_token(settings: Settings, *, session: aiohttp.ClientSession | None) -> str:
    """'' when Slack accepts SLACK_APP_TOKEN for Socket Mode, else why not."""
    client = _client(settings, "", session)
    try:
        await client.apps_connections_open(app_token=settings.slack_app_token)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown_error")
        if error in REFUSED:
            raise ConfigError(app_token_refused(error)) from exc
        return f"apps.connections.open answered {error}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return (
            f"could not reach Slack at {settings.slack_api_url} for Socket Mode ({describe(exc)})"
        )
    return ""


def app_token_refused(error: str) -> str:
    return (
        f"Slack refused SLACK_APP_TOKEN ({error}): create an app-level token with the "
        "connections:write scope under the app's Basic Information → App-Level Tokens."
    )


def describe(exc: BaseException) -> str:
    """An exception as a short phrase for a one-line log (the traceback is for -v)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
