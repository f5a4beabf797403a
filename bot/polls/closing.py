"""`close P-n [decide [pick:<option>]]`: close a poll now, by its creator or an admin, and show
the result; on a tie, `decide` needs the closer to name the option that wins (`pick:`)."""

from __future__ import annotations

from bot.common import channel_tz, load, when
from bot.context import Actor, Deps
from bot.effects import Changed
from bot.errors import Conflict, Forbidden, UsageError
from bot.parser import Command, parse_ref
from bot.polls.results import close
from bot.polls.rules import may_manage
from bot.polls.view import poll_view
from bot.views import Context, Reply, mention


def cmd_close(deps: Deps, actor: Actor, cmd: Command) -> Reply:
    words = cmd.words()
    record = len(words) == 2 and words[1].lower() == "decide"
    if not words or len(words) > 2 or (len(words) == 2 and not record):
        raise UsageError("Give a poll id, optionally followed by decide.", verb="close")
    ref = parse_ref(words[0], verb="close", expect="P")
    pick = cmd.option("pick")
    if pick is not None and not record:
        raise UsageError(
            f"pick: breaks a tie for a decision: `close {ref} decide pick:…`.", verb="close"
        )
    with deps.db.uow() as session:
        poll = load(session, actor, ref, for_update=True)
        if poll.closed_at is not None:
            raise Conflict(f"{ref} closed on {when(poll.closed_at, channel_tz(session, actor))}.")
        if not may_manage(deps, actor, poll):
            raise Forbidden(
                f"Only {mention(poll.created_by)} or a workspace admin can close {ref}."
            )
        res = close(deps, session, actor, poll, record=record, pick=pick)
        reply = poll_view(deps, session, actor, poll)
    reply.kind = "results"
    reply.effects = (Changed(str(ref), "close"),)
    winner = res["winner"] or ("a tie" if res["tied"] else "no votes")
    reply.text = f"Closed {ref}: {winner}" + (
        f" · recorded {res['decision']}" if "decision" in res else ""
    )
    if res.get("picked"):
        reply.text += f" ({res['picked']}, tie broken by {mention(actor.user)})"
    if "decision" in res:
        reply.data["decision"] = res["decision"]
    reply.blocks.insert(0, Context(f"✓ {reply.text}"))
    return reply
