"""A background switch asked by a control message: what it names is checked before anything
changes (a colour, a picture in the scene's folder and nowhere else, the scene file's own,
none), and the message itself says one thing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from avatarcast.broker.messages import ControlMessage
from avatarcast.playout.scene.backdrop import BackdropError, described, wanted
from avatarcast.playout.scene.spec import Background, Scene


def test_the_background_asked_for_is_checked_before_anything_changes(tmp_path: Path) -> None:
    base = tmp_path / "scene"
    base.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(base / "studio.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "private.png")
    keyed = Scene(background=Background(color="#00b140"))
    assert wanted(keyed, base, visible=None, color="#ff00ff", image=None) == Background(
        color="#ff00ff")
    studio = wanted(keyed, base, visible=None, color=None, image="studio.png")
    assert studio is not None and studio.image == (base / "studio.png").resolve()
    assert described(studio) == "studio.png" and described(None) is None
    assert wanted(keyed, base, visible=True, color=None, image=None) == keyed.background
    assert wanted(keyed, base, visible=False, color=None, image=None) is None
    for image, why in (("../private.png", "outside the scene's folder"),
                       (str(tmp_path / "private.png"), "outside the scene's folder"),
                       ("missing.png", "no such file")):
        with pytest.raises(BackdropError, match=why):
            wanted(keyed, base, visible=None, color=None, image=image)
    with pytest.raises(BackdropError, match="the scene file has none"):
        wanted(Scene(), base, visible=True, color=None, image=None)


@pytest.mark.parametrize(("body", "why"), [
    ({"layer": "background", "color": "#ff00ff", "image": "a.png"}, "not color and image"),
    ({"layer": "background", "image": "a.png", "video": "b.mp4"}, "not image and video"),
    ({"layer": "ticker", "color": "#ff00ff"}, "only for the background layer"),
    ({"layer": "background", "color": "magenta"}, "color"),
    ({"layer": "background", "image": "a\nb.png"}, "image"),
    ({"layer": "background"}, "scene needs a layer"),
])
def test_a_background_message_says_one_thing(body: dict[str, str], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        ControlMessage.model_validate({"command": "scene", **body})
    assert ControlMessage.model_validate({"command": "scene", "layer": "background",
                                          "visible": False}).visible is False
