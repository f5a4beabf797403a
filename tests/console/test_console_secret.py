"""The console on its own SQLite database needs no ALIGN_SECRET, on a fresh database and every
time after (its key derives from the database URL, and it stores no fingerprint); with one set
it checks it as `align serve` does, and on a database a server uses it must hold that secret."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from adapters.cli import main
from storage.secret_check import fingerprint


def fingerprints(path: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT fingerprint FROM secret_fingerprints")).scalars())
    finally:
        engine.dispose()


def chat(url: str, line: str, secret: str = "") -> tuple[int, str]:
    env = {"ALIGN_DATABASE_URL": url, "ALIGN_SECRET": secret}
    result = CliRunner().invoke(main, ["chat", "--json"], input=line + "\n", env=env)
    return result.exit_code, result.output


def test_the_console_needs_no_secret_and_keeps_working(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    for n in (1, 2, 3):
        code, output = chat(url, f"decide Number {n}")
        assert code == 0, output
        assert json.loads(output)["id"] == f"D-{n}"
    assert fingerprints(tmp_path / "local.db") == []


def test_on_a_servers_database_the_console_must_hold_its_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    code, output = chat(url, "decide First", secret="the-servers-secret")
    assert code == 0, output
    assert fingerprints(tmp_path / "shared.db") == [fingerprint(b"the-servers-secret")]

    code, output = chat(url, "decide Without")
    assert code == 1
    assert output.strip() == (
        "align: ALIGN_SECRET is not set, but this database is used with one (its fingerprint is "
        "stored): set the same ALIGN_SECRET as the processes serving it."
    )
    code, output = chat(url, "decide Typo", secret="the-servers-secreT")
    assert code == 1
    assert "ALIGN_SECRET is not the secret this database is used with" in output
    run = CliRunner().invoke(
        main, ["run", "decisions"], env={"ALIGN_DATABASE_URL": url, "ALIGN_SECRET": "typo"}
    )
    assert run.exit_code == 1 and "ALIGN_SECRET is not the secret" in run.output

    code, output = chat(url, "decide Second", secret="the-servers-secret")
    assert code == 0, output
    assert json.loads(output)["id"] == "D-2"  # nothing the refused ones said was recorded
