"""The scene over the avatar (issue 30): spec.py (the settings and the scene file), layer.py
(a picture in yuv420p with its alpha, blended over its rectangle only), text.py (text with a
real font), compose.py (every layer over each tick's frame, on the pacer thread)."""
