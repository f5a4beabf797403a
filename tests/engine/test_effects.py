"""The engine tells: every reply that changes or shows a live message says so as typed effects,
the outbox keeps them, and the public JSON carries only product fields."""

from __future__ import annotations

import json

from bot.effects import Changed, Posted
from bot.views import reply_from_payload, reply_to_payload
from tests.conftest import Chat


def test_opening_a_poll_says_its_reply_is_the_polls_live_message(chat: Chat) -> None:
    reply = chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    assert reply.effects == (Posted("P-1"),)
    assert not reply.receipt
    chat.ok("item A")
    chat.ok("item B")
    assert chat.ok("prioritize I-1 I-2").effects == (Posted("P-2"),)


def test_a_vote_is_a_receipt_and_changes_the_poll(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    vote = chat.ok("vote P-1 2", user="ana")
    assert vote.receipt
    assert vote.effects == (Changed("P-1", "vote"),)


def test_a_form_vote_changes_the_poll_too(chat: Chat) -> None:
    chat.ok('poll "Rank" "A" "B" "C" mode:ranked')
    actor = chat.actor(user="ana")
    reply = chat.app.engine.submit_form(actor, "P-1", "ranked", {"rank1": "3", "rank2": "1"})
    assert reply.ok, reply.error
    assert reply.receipt and reply.effects == (Changed("P-1", "vote"),)


def test_an_edit_shows_the_poll_anew_and_changes_its_older_messages(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    edited = chat.ok('edit P-1 add:"Tacos"')
    assert edited.effects == (Posted("P-1"), Changed("P-1", "edit"))


def test_closing_changes_the_poll_and_its_result_is_no_live_message(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    closed = chat.ok("close P-1")
    assert closed.effects == (Changed("P-1", "close"),)
    assert chat.ok("results P-1").effects == ()
    assert chat.ok("show P-1").effects == ()  # closed: no ways to vote, nothing to keep current


def test_show_of_an_open_poll_is_a_live_message_and_results_is_not(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    assert chat.ok("show P-1").effects == (Posted("P-1"),)
    assert chat.ok("results P-1").effects == ()


def test_commands_without_live_messages_state_no_effects(chat: Chat) -> None:
    for line in ("decide Use Postgres", "item SSO", "ask Which region?", "decisions", "roadmap"):
        assert chat.ok(line).effects == (), line


def test_effects_survive_the_outbox_round_trip(chat: Chat) -> None:
    chat.ok('poll "Lunch?" "Pizza" "Sushi"')
    for reply in (chat.ok('edit P-1 add:"Tacos"'), chat.ok("vote P-1 1", user="ana")):
        payload = json.loads(json.dumps(reply_to_payload(reply)))
        back = reply_from_payload(payload)
        assert back.effects == reply.effects
        assert back.receipt == reply.receipt


def test_the_json_contract_shows_product_fields_only(chat: Chat) -> None:
    opened = chat.ok('poll "Lunch?" "Pizza" "Sushi"').to_json()
    vote = chat.ok("vote P-1 1", user="ana").to_json()
    for out in (opened, vote):
        assert not {"opened", "vote", "effects", "receipt", "poll"} & set(out), out
    assert vote["voted"] == "Pizza"
    assert opened["id"] == "P-1" and opened["options"] == ["Pizza", "Sushi"]


def test_a_refused_form_names_the_inputs_at_fault_with_the_typed_votes_messages(
    chat: Chat,
) -> None:
    chat.ok('poll "Spend" "A" "B" "C" mode:dots:5')
    ana = chat.actor(user="ana")
    engine = chat.app.engine

    over = engine.submit_form(ana, "P-1", "dots", {"option1": "4", "option2": "3", "option3": ""})
    assert not over.ok
    typed = chat.fails("vote P-1 1=4 2=3", user="ana")
    assert over.field_errors == {"option1": typed.error, "option2": typed.error}
    # The form comes back with each message next to its input, for surfaces without modals.
    (form,) = [b for b in over.blocks if b.type == "form"]
    assert {f.name: f.error for f in form.fields} == {
        "option1": typed.error,
        "option2": typed.error,
        "option3": None,
        "reason": None,  # the optional reason input
    }

    word = engine.submit_form(ana, "P-1", "dots", {"option1": "2", "option2": "x"})
    assert word.field_errors == {"option2": "Points are a whole number, 0 or more (like 1=3)."}
    empty = engine.submit_form(ana, "P-1", "dots", {"option1": "", "option2": None})
    assert empty.field_errors == {"option1": "Fill in at least one choice."}
    assert chat.ok("results P-1").data["ballots"] == 0


def test_a_ranked_form_points_at_the_rank_that_repeats_an_option(chat: Chat) -> None:
    chat.ok('poll "Rank" "A" "B" "C" mode:ranked')
    ana = chat.actor(user="ana")
    reply = chat.app.engine.submit_form(
        ana, "P-1", "ranked", {"rank1": "2", "rank2": "3", "rank3": "2"}
    )
    assert reply.field_errors == {"rank3": "Option 2 is ranked twice."}
    assert chat.ok("results P-1").data["ballots"] == 0
