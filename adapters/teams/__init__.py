"""Microsoft Teams: the `/api/messages` endpoint, Adaptive Cards, proactive delivery, the app
package.

Everything that knows about botbuilder (the Bot Framework SDK) lives in this package, so moving to
the Microsoft 365 Agents SDK later replaces this folder and touches nothing else:

    http.py      mount(web_app, app): POST /api/messages through botbuilder's CloudAdapter
    openid.py    Bot Framework signing keys fetched off the event loop; unreachable → 503
    bot.py       the ActivityHandler: activity → engine call → card, poll cards updated in place
    identity.py  who/where/what of an activity: workspace, channel, user, mentions, command text
    cards.py     bot.views.Reply → Adaptive Card (and plain text for errors), under the size limit
    people.py    rosters and names: the engine's Directory port for Teams, the profiles table
    refs.py      stored conversation references and handled-activity ids (the database side)
    retry.py     429 handling for the connector (botbuilder does not retry it)
    delivery.py  TeamsSender: the outbox's Sender, proactive via continue_conversation
    package.py   `align teams-package`: manifest.json + icons, zipped for upload
"""
