"""The `align` command: chat, run, migrate, serve and the operator tools."""

from __future__ import annotations

import getpass
import logging
import os
import sys

import click

from adapters.settings import Settings


def _default_user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # getpass fails without a passwd entry (some containers)
        return "me"


def _where(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--user", default=_default_user, show_default="$USER")(f)
    f = click.option("--channel", default="general", show_default=True)(f)
    f = click.option("--workspace", default="local", show_default=True)(f)
    return f


class AlignGroup(click.Group):
    """Configuration and connection failures end in one sentence and exit status 1; the
    traceback is logged only with -v. Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as exc:
            sentence = failure_sentence(exc)
            if sentence is None:
                raise
            logging.getLogger("align").debug("the cause, in full:", exc_info=True)
            click.echo(f"align: {sentence}", err=True)
            ctx.exit(1)


def failure_sentence(exc: BaseException) -> str | None:
    """What went wrong, in one sentence, for the failures an operator can fix; None for bugs."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError

    from adapters.preflight import ConfigError

    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, ValidationError):
        wrong = exc.errors()[0]
        name = ".".join(str(part) for part in wrong["loc"])
        return f"{name}={wrong.get('input')!r} is not valid: {wrong['msg']}."
    if isinstance(exc, NoSuchModuleError | ArgumentError):
        return (
            f"ALIGN_DATABASE_URL is not a database URL Align can use ({first_line(exc)}); "
            "for example sqlite:///align.db or postgresql://user:password@host/db."
        )
    if isinstance(exc, OperationalError | InterfaceError):
        cause = first_line(exc.orig or exc)
        return (
            f"The database at ALIGN_DATABASE_URL could not be used ({cause}); check the URL and "
            "that the database server is running."
        )
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@click.group(cls=AlignGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug output (and tracebacks) to stderr.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="json: one JSON object per line, for log aggregators (default ALIGN_LOG_FORMAT, text).",
)
def main(verbose: bool, log_format: str | None) -> None:
    """Align: decisions, a scored roadmap, questions and polls — in Slack, Teams or here."""
    from pydantic import ValidationError

    from adapters import logs

    if log_format is None:
        try:
            log_format = Settings().log_format
        except ValidationError:  # the command itself reports it, in one line
            log_format = "text"
    logs.configure(verbose=verbose, fmt=log_format)


@main.command()
@_where
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per command.")
def chat(workspace: str, channel: str, user: str, as_json: bool) -> None:
    """Chat with Align in the terminal (reads piped standard input too)."""
    from adapters.bootstrap import build, check_secret
    from adapters.console.repl import Console, console_actor, interactive_lines

    app = build(Settings())
    check_secret(app)
    console = Console(app.engine, console_actor(workspace, channel, user), as_json=as_json)
    runtime = _start_runtime(app, console)
    try:
        if sys.stdin.isatty():
            console.run(interactive_lines(console))
        else:
            console.run(sys.stdin)
    finally:
        if runtime is not None:
            runtime.stop()


def _start_runtime(app: object, console: object) -> object | None:
    """Start the scheduler and outbox delivery to this terminal when that part is installed."""
    try:
        from adapters.console.runtime import start_console_runtime
    except ImportError:
        return None
    return start_console_runtime(app, console)


@main.command()
@click.argument("command")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def run(command: str, workspace: str, channel: str, user: str, as_json: bool) -> None:
    """Run one Align command and print the answer; exit status 1 when it failed."""
    from adapters.bootstrap import build, check_secret
    from adapters.console.repl import console_actor, emit

    app = build(Settings())
    check_secret(app)
    reply = app.engine.answer(console_actor(workspace, channel, user), command)
    emit(reply, as_json=as_json, out=sys.stdout)
    sys.exit(0 if reply.ok else 1)


@main.command()
def migrate() -> None:
    """Apply database migrations up to the newest (serve and chat do this on start)."""
    from storage.migrate import current, upgrade

    settings = Settings()
    upgrade(settings.database_url)
    click.echo(f"Database at revision {current(settings.database_url)}.")


ADOPT_WARNING = """\
This database was used with another ALIGN_SECRET. Adopting this one cannot be undone for what
was sealed or keyed with the old secret (README, "Changing ALIGN_SECRET"):
- {pending} anonymous ballot(s) still waiting for their batch will never be counted;
- {inbox} request(s) recorded but not finished can no longer be opened, and are dropped;
- anonymous ballots already counted in polls still open no longer match their voters: a voter
  who votes again is counted as a new ballot, beside the old one;
- {webhooks} webhook(s) get a new signing secret: rotate each (`webhook rotate <n>`) and give
  its receiver the new one.
Stop every Align process first, and start them all with this ALIGN_SECRET afterwards."""


@main.command("adopt-secret")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def adopt_secret(yes: bool) -> None:
    """Make the current ALIGN_SECRET the one this database is used with (after changing it)."""
    from adapters.bootstrap import secret_fingerprint
    from adapters.preflight import ConfigError
    from bot.clock import SystemClock
    from storage import Database, secret_check, upgrade

    settings = Settings()
    if not settings.secret:
        raise ConfigError(
            "ALIGN_SECRET is not set: set it to the new secret, then run `align adopt-secret`."
        )
    upgrade(settings.database_url)
    db = Database(settings.database_url, connect_timeout=settings.db_connect_timeout)
    try:
        mine = secret_fingerprint(settings)
        held = secret_check.stored(db)
        if held == mine:
            click.echo("ALIGN_SECRET is already the one this database is used with.")
            return
        if held is not None:
            click.echo(ADOPT_WARNING.format(**secret_check.sealed_counts(db)), err=True)
            if not yes:
                click.confirm("Adopt this ALIGN_SECRET?", abort=True, err=True)
        secret_check.replace(db, mine, now=SystemClock().now())
    finally:
        db.dispose()
    click.echo("ALIGN_SECRET adopted: every process sharing this database must now run with it.")


@main.command()
@click.option("--markdown", is_flag=True, help="As the README's Markdown table.")
def commands(markdown: bool) -> None:
    """List every command's usage line (the README's table comes from here)."""
    from bot import grammar

    if markdown:
        click.echo(grammar.markdown_table())
    else:
        for verb in grammar.VERBS:
            click.echo(f"{verb.usage}\n    {verb.summary}")


def _register_optional() -> None:
    """Commands of the platform parts; each lives with its adapter."""
    for module, name in (
        ("adapters.server", "serve"),
        ("adapters.doctor", "doctor"),
        ("adapters.teams.package", "teams_package"),
        ("adapters.schedule_cli", "schedule"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        main.add_command(getattr(mod, name))


_register_optional()
