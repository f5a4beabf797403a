"""This process's name in the database's claims (outbox lanes and rows, live-message turns).

Unique per process start — host, pid and a random part — so a restarted process with the same
pid is never mistaken for its predecessor, and an operator can tell from `claimed_by` which
replica holds what.
"""

from __future__ import annotations

import os
import socket
import uuid


def worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


__all__ = ["worker_id"]
