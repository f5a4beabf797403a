"""The deployment files say only what is true of the code: images cannot be built here, so each
file is read and every command, flag and variable it names is checked against the CLI and the
settings; the systemd unit's commands and the image's health check are run for real."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from adapters.cli import main
from adapters.settings import Settings
from tests.server.process import ALIGN, align, environment, free_port

yaml = pytest.importorskip("yaml", reason="PyYAML reads compose.yaml")

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {field.alias for field in Settings.model_fields.values() if field.alias}
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "ALIGN_PUBLIC_HOST"}  # read by the db and Caddy images
# Never in a deployment's configuration.
TESTS_ONLY = {"ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS", "ALIGN_SECRET_RECHECK_FOR_TESTS"}


def cli_accepts(args: list[str]) -> None:
    """Parse `align <command> <args>` as the CLI would, without running it (raises on a bad
    command, option or value)."""
    name, *rest = args
    with click.Context(main, info_name="align") as ctx:
        command = main.get_command(ctx, name)
        if command is None:
            raise click.exceptions.UsageError(f"no such command {name!r}", ctx)
        command.make_context(name, rest, parent=ctx).close()


def test_cli_accepts_is_a_real_check() -> None:
    cli_accepts(["serve", "--role", "web"])
    for wrong in (["serve", "--role", "primary"], ["serve", "--sockets"], ["deploy"]):
        with pytest.raises(click.exceptions.UsageError):
            cli_accepts(wrong)


# ----------------------------------------------------------------------------- .env.example


def env_example() -> dict[str, str]:
    found = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def test_env_example_names_every_setting_and_nothing_else() -> None:
    named = set(env_example())
    assert named - COMPOSE_ONLY == SETTINGS - TESTS_ONLY
    assert named >= COMPOSE_ONLY


def test_env_example_as_it_is_is_a_valid_configuration(tmp_path: Path) -> None:
    copy = tmp_path / ".env"
    copy.write_text((ROOT / ".env.example").read_text())
    loaded = Settings(_env_file=copy)  # type: ignore[call-arg]
    assert loaded.port == 3000 and loaded.shutdown_grace == 20.0
    assert loaded.secret == ""  # empty lines mean "the default": serve then says to set it


# ----------------------------------------------------------------------------- compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run Align's image."""
    return {name: s for name, s in compose["services"].items() if s.get("build") == "."}


def test_compose_runs_migrate_once_then_web_replicas_and_one_worker(
    compose: dict[str, Any],
) -> None:
    services = ours(compose)
    assert set(services) == {"migrate", "web", "worker"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["web"]["command"] == ["serve", "--role", "web"]
    assert services["web"]["deploy"]["replicas"] >= 2
    assert services["worker"]["command"] == ["serve", "--role", "worker"]
    assert services["worker"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert "ports" not in services[name]  # only Caddy is reachable from outside


def test_every_command_compose_runs_is_one_the_cli_accepts(compose: dict[str, Any]) -> None:
    for service in ours(compose).values():
        cli_accepts(service["command"])


def test_every_variable_compose_gives_align_is_a_setting(compose: dict[str, Any]) -> None:
    for name, service in ours(compose).items():
        unknown = set(service["environment"]) - SETTINGS
        assert not unknown, (name, unknown)
        assert service["env_file"] == ".env"
    url = ours(compose)["web"]["environment"]["ALIGN_DATABASE_URL"]
    assert url.startswith("postgresql://align:") and url.endswith("@db:5432/align")


def test_compose_interpolates_only_variables_env_example_documents() -> None:
    text = (ROOT / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used and used <= set(env_example()), used - set(env_example())


def test_compose_waits_longer_than_the_shutdown_grace(compose: dict[str, Any]) -> None:
    grace = Settings.model_fields["shutdown_grace"].default
    for service in ours(compose).values():
        assert int(service["stop_grace_period"].removesuffix("s")) > grace


def test_compose_files_it_mounts_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
    caddyfile = (ROOT / "deploy" / "Caddyfile.compose").read_text()
    assert "dynamic a web 3000" in caddyfile and "{$ALIGN_PUBLIC_HOST}" in caddyfile


# ----------------------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_slim_base_non_root_align_serve_entrypoint() -> None:
    instructions = dockerfile()
    bases = [arg for op, arg in instructions if op == "FROM"]
    assert bases and all(re.match(r"python:3\.1[1-9]-slim\b", base) for base in bases), bases
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    (user,) = [arg for op, arg in final if op == "USER"]
    assert user not in ("root", "0")
    entrypoint = json.loads(next(arg for op, arg in final if op == "ENTRYPOINT"))
    command = json.loads(next(arg for op, arg in final if op == "CMD"))
    assert entrypoint == ["align"] and command == ["serve"]
    cli_accepts(command)
    exposed = next(arg for op, arg in final if op == "EXPOSE")
    assert int(exposed) == Settings.model_fields["port"].default
    for op, arg in instructions:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "*.db", ".git"} <= set(ignored)


def healthcheck_command() -> list[str]:
    (arg,) = [arg for op, arg in dockerfile() if op == "HEALTHCHECK"]
    return json.loads(arg[arg.index("CMD") + 3 :].strip())


def test_the_image_health_check_passes_on_a_running_server_and_fails_without_one(
    tmp_path: Path,
) -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    probe = [sys.executable, *command[1:]]
    port = free_port()
    env = {"ALIGN_SECRET": "s", "ALIGN_PORT": str(port)}
    with align(tmp_path, "serve", port=port, **env) as serve:
        serve.wait_listening()
        healthy = subprocess.run(
            probe, env=environment(tmp_path, ALIGN_PORT=str(port)), check=False
        )
        serve.send(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    assert healthy.returncode == 0
    down = subprocess.run(
        probe, env=environment(tmp_path, ALIGN_PORT=str(port)), capture_output=True, check=False
    )
    assert down.returncode != 0


# ----------------------------------------------------------------------------- systemd unit


def unit() -> dict[str, list[str]]:
    """key -> values (a key may repeat) of deploy/align.service, sections flattened."""
    values: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "align.service").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def installed(command: str) -> list[str]:
    """The unit's command line with its install path replaced by this checkout's `align`."""
    argv = shlex.split(command)
    assert argv[0] == "/opt/align/bin/align", argv[0]
    return argv[1:]


def test_the_systemd_unit_migrates_serves_and_stops_on_sigterm_within_its_timeout(
    tmp_path: Path,
) -> None:
    service = unit()
    assert service["KillSignal"] == ["SIGTERM"]
    timeout = int(service["TimeoutStopSec"][0])
    assert timeout > Settings.model_fields["shutdown_grace"].default
    (pre,) = service["ExecStartPre"]
    (start,) = service["ExecStart"]
    port = free_port()
    env = {
        "ALIGN_SECRET": "s",
        "ALIGN_DATABASE_URL": f"sqlite:///{tmp_path / 'align.db'}",
        "ALIGN_PORT": str(port),
    }
    migrated = subprocess.run(
        [ALIGN, *installed(pre)],
        env=environment(tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Database at revision" in migrated.stdout
    with align(tmp_path, *installed(start), port=port, **env) as serve:
        serve.wait_listening()
        serve.send(signal.SIGTERM)
        assert serve.wait(timeout=timeout) == 0, serve.output
    for key in service.get("Environment", []):
        assert key.partition("=")[0] in SETTINGS


# ----------------------------------------------------------------------------- README


README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_readme_has_the_operator_sections() -> None:
    for title in ("Deploy", "Configuration", "Upgrading", "Backups", "Logs", "Troubleshooting"):
        assert section(title).strip()


def test_the_configuration_table_names_every_variable_and_which_mode_needs_it() -> None:
    rows = [line for line in section("Configuration").splitlines() if line.startswith("| `")]
    named: set[str] = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 3 and cells[1], row  # variable | needed for | meaning
        named |= set(re.findall(r"`([A-Z][A-Z_]+)`", cells[0]))
    assert named == SETTINGS | COMPOSE_ONLY


COMMAND_LINE = re.compile(
    r"(?:^|[\s`(])(?:\.venv/bin/|/opt/align/bin/)?align "
    r"((?:-v |--log-format json )?[a-z][a-z-]*(?: [^`\n&|#;)]*)?)",
    re.MULTILINE,
)


def test_every_align_command_line_in_the_readme_is_one_the_cli_accepts() -> None:
    lines = {m.group(1).strip() for m in COMMAND_LINE.finditer(README)}
    runnable = {line for line in lines if not re.search(r"[\[<…]", line)}  # not synopses
    assert {"serve --role web", "doctor --socket", "--log-format json serve"} <= runnable
    for line in sorted(runnable):
        args = shlex.split(line)
        while args[0] in ("-v", "--log-format", "json"):
            args.pop(0)
        cli_accepts(args)


def test_the_readme_names_every_command_and_serve_flag() -> None:
    from adapters.server import serve

    with click.Context(main) as ctx:
        for name in main.list_commands(ctx):
            assert f"align {name}" in README, name
    for option in serve.params:
        for flag in option.opts:
            if flag.startswith("--"):
                assert flag in README, flag
