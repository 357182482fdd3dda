"""The WebRTC view of the program (WHEP, with aiortc): view.py decides whether it is on (aiortc
is optional) and builds it, feed.py takes the pacer's ticks, tracks.py turns them into a
peer's picture and sound, whep.py answers the browsers. Nothing that needs aiortc is imported
unless the view is on."""
