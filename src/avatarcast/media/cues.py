"""What a speech asks of the face, frame by frame, besides its mouth: a nod, a lift of the
brows, a blink at a pause. Made with the speech's frames by the renderer (avatar/alive/
gestures.py), read by the motion on air (avatar/alive/driver.py)."""

from __future__ import annotations

from typing import NamedTuple


class Cue(NamedTuple):
    nod: float = 0.0  # 0 .. about 1: how far the head dips (an accent, a phrase's end)
    brow: float = 0.0  # 0 .. 1: how far the brows lift (a question, an emphasis)
    blink: float = 0.0  # 0 .. 1: how strongly a blink is wanted now (a pause after a phrase)


QUIET = Cue()
