"""`align teams-package` writes a zip Teams accepts: a manifest valid against the official
schema of the version it declares, and the two icons Teams requires."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from adapters.cli import main
from adapters.teams.package import MENU_VERBS
from bot import grammar

DATA = Path(__file__).parent / "data"
BOT_ID = "0b6fe6d1-1234-4000-8000-00000000b071"


def official_schema(manifest: dict) -> dict:
    """The shipped copy of the schema the manifest's own `$schema`/`manifestVersion` names."""
    version = manifest["manifestVersion"]
    assert manifest["$schema"] == (
        f"https://developer.microsoft.com/json-schemas/teams/v{version}/MicrosoftTeams.schema.json"
    )
    return json.loads((DATA / f"MicrosoftTeams.v{version}.schema.json").read_text("utf-8"))


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and RGBA rows of a non-interlaced 8-bit RGBA PNG (filter 0 or any)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, color, interlace) == (8, 6, 0)
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    rows = []
    for y in range(height):
        line = raw[y * stride : (y + 1) * stride]
        assert line[0] == 0  # no filter
        rows.append([tuple(line[1 + 4 * x : 5 + 4 * x]) for x in range(width)])
    return width, height, rows


def build(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, Path]:
    out = tmp_path / "align-teams.zip"
    result = CliRunner().invoke(
        main,
        ["teams-package", "--output", str(out), "--host", "align.example.com", *args],
        env={"MICROSOFT_APP_ID": BOT_ID, **(env or {})},
    )
    return result.exit_code, result.output, out


def test_the_package_is_a_zip_with_manifest_and_icons_at_its_root(tmp_path: Path) -> None:
    code, output, out = build(tmp_path)
    assert code == 0, output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]


def test_the_manifest_is_valid_against_the_official_schema_it_declares(tmp_path: Path) -> None:
    code, output, out = build(tmp_path, "--version", "1.2.3")
    assert code == 0, output
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    schema = official_schema(manifest)
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(manifest)
    assert float(manifest["manifestVersion"]) >= 1.17
    [bot] = manifest["bots"]
    assert bot["botId"] == BOT_ID and manifest["id"] == BOT_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert manifest["version"] == "1.2.3"
    assert manifest["validDomains"] == ["align.example.com"]


def test_the_schema_catches_what_teams_would_reject(tmp_path: Path) -> None:
    """The shipped schema is the real constraint: more than 10 commands fails it."""
    code, _, out = build(tmp_path)
    assert code == 0
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    schema = official_schema(manifest)
    too_many = json.loads(json.dumps(manifest))
    too_many["bots"][0]["commandLists"][0]["commands"] = [
        {"title": v.name, "description": v.summary} for v in grammar.VERBS
    ]
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(too_many))
    assert any("is too long" in e.message for e in errors)


def test_the_command_menu_is_the_ten_entry_point_verbs_from_the_grammar(tmp_path: Path) -> None:
    code, _, out = build(tmp_path)
    assert code == 0
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    [commands] = manifest["bots"][0]["commandLists"]
    titles = [c["title"] for c in commands["commands"]]
    assert titles == list(MENU_VERBS) and len(titles) == 10
    for command in commands["commands"]:
        verb = grammar.verb(command["title"])
        assert command["description"] == verb.summary
        assert len(command["title"]) <= 32 and len(command["description"]) <= 128


def test_icons_are_192_colour_and_32_white_on_transparent_outline(tmp_path: Path) -> None:
    code, _, out = build(tmp_path)
    assert code == 0
    with zipfile.ZipFile(out) as archive:
        color = read_png(archive.read("color.png"))
        outline = read_png(archive.read("outline.png"))
    assert color[:2] == (192, 192)
    assert all(pixel[3] == 255 for row in color[2] for pixel in row)  # opaque
    assert len({pixel for row in color[2] for pixel in row}) == 2  # background + glyph
    assert outline[:2] == (32, 32)
    pixels = {pixel for row in outline[2] for pixel in row}
    assert pixels == {(255, 255, 255, 255), (0, 0, 0, 0)}  # only white and transparent


def test_without_an_app_id_it_says_what_to_set(tmp_path: Path) -> None:
    code, output, out = build(tmp_path, env={"MICROSOFT_APP_ID": ""})
    assert code != 0
    assert "MICROSOFT_APP_ID" in output
    assert not out.exists()


def manifest_of(out: Path) -> dict:
    with zipfile.ZipFile(out) as archive:
        return json.loads(archive.read("manifest.json"))


def test_website_privacy_and_terms_default_to_the_pages_align_serves(tmp_path: Path) -> None:
    code, output, out = build(tmp_path)
    assert code == 0, output
    assert manifest_of(out)["developer"] == {
        "name": "Align",
        "websiteUrl": "https://align.example.com/",
        "privacyUrl": "https://align.example.com/privacy",
        "termsOfUseUrl": "https://align.example.com/terms",
    }
    code, output, out = build(
        tmp_path,
        "--website",
        "https://corp.example/",
        "--privacy-url",
        "https://corp.example/privacy-statement",
        "--terms-url",
        "https://corp.example/terms-of-use",
    )
    assert code == 0, output
    developer = manifest_of(out)["developer"]
    assert developer["privacyUrl"] == "https://corp.example/privacy-statement"
    assert developer["termsOfUseUrl"] == "https://corp.example/terms-of-use"


def test_without_a_host_the_links_must_be_given(tmp_path: Path) -> None:
    out = tmp_path / "align-teams.zip"
    result = CliRunner().invoke(
        main, ["teams-package", "--output", str(out)], env={"MICROSOFT_APP_ID": BOT_ID}
    )
    assert result.exit_code != 0
    assert "--host" in result.output and "--privacy-url, --terms-url" in result.output
    assert not out.exists()


def test_the_default_package_file_is_ignored_by_git() -> None:
    import fnmatch

    from adapters.teams.package import teams_package

    (output,) = [p for p in teams_package.params if p.name == "output"]
    name = Path(str(output.default)).name
    patterns = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
