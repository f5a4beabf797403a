"""What Slack gets when the backlog is full (adapters/inbox.py `Busy`): a private answer at once.

Nothing was recorded, so nothing will run later; the person is told so in the quickest private
way each kind of request allows:

- a slash command: in the ack itself (an ephemeral message body) — no call after it;
- a click: acked, then the answer through the click's `response_url` (ephemeral, the clicked
  message left as it is), as the listeners answer every click; without one (a click in App
  Home), `chat.postEphemeral` in its channel when it has one;
- a modal submitted: acked with the answer under the modal's first input, so the modal stays
  open and can be sent again;
- an event (a line typed in the app's DM, App Home opened): a 503, so Slack delivers it again
  later — an event cannot be answered in its ack, and a retried one is not lost.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.inbox import BUSY
from adapters.slack import envelope
from adapters.slack.workers import Workers

log = logging.getLogger("align.slack")

_JSON = {"content-type": ["application/json;charset=utf-8"]}


def answer(req: AsyncBoltRequest, workers: Workers) -> BoltResponse:
    """The ack for a request refused because the backlog is full (see the module docstring)."""
    body = req.body
    kind = envelope.kind_of(body)
    if kind == "command":
        text = json.dumps({"response_type": "ephemeral", "text": BUSY})
        return BoltResponse(status=200, body=text, headers=_JSON)
    if kind == "view_submission":
        errors = _first_input(body)
        if errors is None:
            return BoltResponse(status=503, body="busy; please retry")
        text = json.dumps({"response_action": "errors", "errors": {errors: BUSY}})
        return BoltResponse(status=200, body=text, headers=_JSON)
    if kind == "block_actions":
        workers.spawn(_tell_clicker(req))
        return BoltResponse(status=200, body="")
    if kind == "view_closed":  # a modal dismissed: Align does nothing with it anyway
        return BoltResponse(status=200, body="")
    return BoltResponse(status=503, body="busy; please retry")


def _first_input(body: dict[str, Any]) -> str | None:
    """The block id of the submitted modal's first input, where Slack shows an error."""
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    return next(iter(values), None) if isinstance(values, dict) else None


async def _tell_clicker(req: AsyncBoltRequest) -> None:
    context = req.context
    try:
        if context.response_url:
            await context.respond(text=BUSY, response_type="ephemeral", replace_original=False)
        elif context.channel_id and context.user_id and context.client is not None:
            await context.client.chat_postEphemeral(
                channel=context.channel_id, user=context.user_id, text=BUSY
            )
        else:
            log.warning("a click refused as busy had nowhere to be answered")
    except Exception:
        log.warning("telling a clicker Align is busy failed", exc_info=True)
