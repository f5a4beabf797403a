"""`align teams-package`: the Teams app package to upload (Developer Portal or Teams admin).

A zip with `manifest.json`, `color.png` (192×192) and `outline.png` (32×32, white on
transparent) at its root. The manifest follows schema v1.17 — a released version every Teams
client accepts, validated in tests/teams/test_package.py against the official schema text — and
declares the bot (MICROSOFT_APP_ID) in personal, team and group chat scopes.

The command menu shows at most 10 commands per list (title ≤ 32, description ≤ 128 characters).
Align has more verbs than that, so the menu offers the entry points people reach for first —
help (which lists everything else), record and find decisions, open/vote/read polls, add to and
view the roadmap, ask a question, set up the digest. The titles come from `bot.grammar.VERBS`, the
one place verbs are defined; every other verb works the same when typed.

Icons are drawn here with zlib + struct (no image library): left-aligned bars of different
lengths, the "align" glyph.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import click

from adapters.settings import Settings
from bot import grammar

MANIFEST_VERSION = "1.17"
SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.schema.json"
)
MENU_VERBS = (
    "help",
    "decide",
    "decisions",
    "poll",
    "vote",
    "results",
    "item",
    "roadmap",
    "ask",
    "digest",
)
SCOPES = ["personal", "team", "groupChat"]
ACCENT = (0x4F, 0x46, 0xE5)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


# ------------------------------------------------------------------------------- icons


def png(width: int, height: int, pixels: list[list[tuple[int, int, int, int]]]) -> bytes:
    """An RGBA PNG from rows of (r, g, b, a)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"".join(bytes(p) for p in row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _bars(size: int) -> list[tuple[int, int, int, int]]:
    """The glyph: three left-aligned bars, long / short / medium, as (x0, y0, x1, y1) boxes."""
    unit = size / 32
    left = round(7 * unit)
    boxes = []
    for top, length in ((8, 18), (14.5, 11), (21, 15)):
        y0 = round(top * unit)
        boxes.append((left, y0, left + round(length * unit), y0 + max(1, round(3.5 * unit))))
    return boxes


def _inside(x: int, y: int, boxes: list[tuple[int, int, int, int]]) -> bool:
    return any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in boxes)


def color_icon(size: int = 192) -> bytes:
    """White bars on the accent colour, full bleed (Teams rounds the corners itself)."""
    boxes = _bars(size)
    background = (*ACCENT, 255)
    white = (255, 255, 255, 255)
    rows = [
        [white if _inside(x, y, boxes) else background for x in range(size)] for y in range(size)
    ]
    return png(size, size, rows)


def outline_icon(size: int = 32) -> bytes:
    """White bars on transparent: Teams requires only white and transparent pixels."""
    boxes = _bars(size)
    white, clear = (255, 255, 255, 255), (0, 0, 0, 0)
    rows = [[white if _inside(x, y, boxes) else clear for x in range(size)] for y in range(size)]
    return png(size, size, rows)


# ------------------------------------------------------------------------------- manifest


def commands() -> list[dict[str, str]]:
    found = []
    for name in MENU_VERBS:
        verb = grammar.verb(name)
        found.append({"title": verb.name[:32], "description": verb.summary[:128]})
    return found


def manifest(
    *,
    bot_id: str,
    version: str = "1.0.0",
    app_id: str | None = None,
    website: str,
    privacy: str,
    terms: str,
    host: str | None = None,
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id or bot_id,
        "developer": {
            "name": "Align",
            "websiteUrl": website,
            "privacyUrl": privacy,
            "termsOfUseUrl": terms,
        },
        "name": {"short": "Align", "full": "Align: decisions, priorities and polls"},
        "description": {
            "short": "Decisions, a RICE-scored roadmap, open questions and polls in chat.",
            "full": (
                "Align keeps a product team aligned where it already talks. Record decisions "
                "with their rationale and history, keep a RICE-scored Now/Next/Later backlog, "
                "track open questions with owners and due dates, and run polls (single, multi, "
                "ranked with Schulze, or dot voting) right in the channel — with a weekly "
                "digest of what changed. Mention @Align with a command; @Align help lists them."
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": bot_id,
                "scopes": SCOPES,
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": SCOPES, "commands": commands()}],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [host] if host else [],
    }


def build_package(manifest_data: dict[str, Any]) -> bytes:
    """The zip Teams accepts: the three files at the root, nothing else."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest_data, indent=2, ensure_ascii=False))
        archive.writestr("color.png", color_icon())
        archive.writestr("outline.png", outline_icon())
    return buffer.getvalue()


@click.command("teams-package")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("align-teams.zip"),
    show_default=True,
    help="Where to write the zip.",
)
@click.option(
    "--version",
    "app_version",
    default="1.0.0",
    show_default=True,
    help="The app's version; raise it for each re-upload.",
)
@click.option("--app-id", default=None, help="Teams app id (a GUID); default: the bot's app id.")
@click.option(
    "--host", default=None, help="Public host name of `align serve`, e.g. align.example.com."
)
@click.option("--website", default=None, help="Developer website (default https://HOST/).")
@click.option(
    "--privacy-url", default=None, help="Privacy statement URL (default https://HOST/privacy)."
)
@click.option("--terms-url", default=None, help="Terms of use URL (default https://HOST/terms).")
def teams_package(
    output: Path,
    app_version: str,
    app_id: str | None,
    host: str | None,
    website: str | None,
    privacy_url: str | None,
    terms_url: str | None,
) -> None:
    """Write the Teams app package (manifest.json + icons) to upload to Teams.

    Teams shows the developer website, privacy statement and terms of use to everyone who
    installs the app; by default they are the pages `align serve` itself serves at HOST
    (adapters/about.py)."""
    bot_id = Settings().microsoft_app_id.strip()
    if not _GUID.match(bot_id):
        raise click.ClickException(
            "Set MICROSOFT_APP_ID to the Azure Bot's Microsoft App ID (a GUID) first; "
            "the package names the bot Teams should talk to."
        )
    if app_id and not _GUID.match(app_id):
        raise click.ClickException("--app-id must be a GUID.")
    base = f"https://{host}" if host else None
    links = {
        "--website": website or (base and f"{base}/"),
        "--privacy-url": privacy_url or (base and f"{base}/privacy"),
        "--terms-url": terms_url or (base and f"{base}/terms"),
    }
    missing = [flag for flag, url in links.items() if not url]
    if missing:
        raise click.ClickException(
            f"Give --host (the public host of `align serve`, which serves its own privacy and "
            f"terms pages) or {', '.join(missing)}: Teams shows them to everyone who installs "
            "the app."
        )
    data = manifest(
        bot_id=bot_id,
        version=app_version,
        app_id=app_id,
        website=str(links["--website"]),
        privacy=str(links["--privacy-url"]),
        terms=str(links["--terms-url"]),
        host=host,
    )
    output.write_bytes(build_package(data))
    click.echo(f"Wrote {output} (manifest v{MANIFEST_VERSION}, bot {bot_id}).")
    click.echo(
        "Upload it in Teams: Apps → Manage your apps → Upload an app, or the Developer Portal."
    )
