"""Live chat in (issue 29): `avatarcast chat` reads a platform's chat through an adapter
(twitch.py and irc.py: Twitch IRC; youtube.py: YouTube's liveChatMessages; webhook.py: signed
posts from relays of other platforms), each normalized to one ChatMessage (message.py);
moderation.py decides what may be aired, selection.py what to answer when chat is busy,
answers.py what airs for it (an ask that names and quotes the viewer, or thanks), and relay.py
publishes it to the channel's speak queue (settings.py: its settings; sources.py: the chats
they name; metrics.py: its counters)."""
