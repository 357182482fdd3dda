"""Talking faces: animators behind one Protocol, run on their own thread."""
