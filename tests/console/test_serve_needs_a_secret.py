"""`align serve` refuses to start without ALIGN_SECRET: a shared server must not fall back to
the console's key derived from the database URL."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from adapters.cli import main


def test_serve_without_a_secret_says_what_to_set_and_starts_nothing(tmp_path: Path) -> None:
    db = tmp_path / "align.db"
    result = CliRunner().invoke(
        main, ["serve"], env={"ALIGN_SECRET": "", "ALIGN_DATABASE_URL": f"sqlite:///{db}"}
    )
    assert result.exit_code != 0
    assert "ALIGN_SECRET is not set" in result.output
    assert not db.exists()  # refused before touching the database
