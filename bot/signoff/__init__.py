"""Sign-off: proposals that named stakeholders agree to, object to or block.

A proposal is a decision (`D-n`, status `proposed`) with a rule and people in roles (DACI/RACI:
the owner drives, approvers decide, consulted advise, informed are told). The package splits by
reason to change: `rules` (when a proposal is accepted — pure), `roles` (who is involved, and
their stances, in the database), `proposing` (`propose`), `stances` (`agree`, `abstain`,
`object`, `block`), `settling` (accepting or rejecting, by rule or by hand, and telling people
through the outbox), `asking` (who still owes an answer, reminders), `review` (`review`) and
`view` (the proposal as a live message and in `show`).

This module imports nothing: `bot.decisions` shows proposals with `view`, and `proposing` records
them with `bot.decisions`, so the package face stays empty to keep that cycle out.
"""
