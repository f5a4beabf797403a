"""Which platform a workspace lives on, from its name (`slack:T…`, `teams:<tenant>`, else the
console) — so messages the scheduler sends on its own go back where the channel is."""

from __future__ import annotations

SYSTEM_USER = "align"
"""Who acts when nobody typed anything: the scheduler closing a poll, posting a digest."""


def platform_of(workspace: str) -> str:
    prefix, sep, _ = workspace.partition(":")
    if sep and prefix in ("slack", "teams"):
        return prefix
    return "console"
