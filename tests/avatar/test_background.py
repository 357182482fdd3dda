"""A replaced background (avatar/segment.py, avatar/background.py) on the bundled portrait:
the segmentation model finds the person (face, hair, suit) and not what is behind (the flag,
the wall, the shuttle); the frames come back with the person as they were and a key colour or
a picture behind, with a soft edge between."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from avatarcast.avatar import __file__ as avatar_pkg
from avatarcast.avatar.background import with_background
from avatarcast.avatar.runtime import Avatar, rgb_to_frame
from avatarcast.avatar.segment import Segmenter
from avatarcast.media.idle import IdleCycle
from avatarcast.playout.scene.spec import Background

KEY = (0, 177, 64)  # #00b140
# On the 512x512 portrait: the face and the suit, and what is behind them.
PERSON = [(256, 130), (230, 90), (250, 60), (200, 400), (300, 300)]  # (x, y)
BEHIND = [(30, 60), (60, 150), (420, 150), (470, 40), (130, 30)]


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    bgr = cv2.imread(str(Path(avatar_pkg).parent / "avatar.png"))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_the_model_finds_the_person_and_not_what_is_behind(portrait: np.ndarray) -> None:
    mask = Segmenter()(portrait)
    assert mask.shape == portrait.shape[:2] and mask.dtype == np.float32
    assert all(mask[y, x] > 0.95 for x, y in PERSON), [mask[y, x] for x, y in PERSON]
    assert all(mask[y, x] < 0.05 for x, y in BEHIND), [mask[y, x] for x, y in BEHIND]
    edge = mask[(mask > 0.05) & (mask < 0.95)]
    assert 0 < edge.size < 0.05 * mask.size  # a soft edge, a few pixels wide


def test_the_frames_come_back_with_a_key_colour_behind_the_person(portrait: np.ndarray) -> None:
    avatar = Avatar(IdleCycle([rgb_to_frame(portrait)]), rgb=[portrait])
    keyed = with_background(avatar, Background(color="#00b140"))
    assert avatar.rgb is not None and avatar.rgb[0] is portrait  # (the given frames untouched)
    out = keyed.rgb
    assert out is not None and keyed.idle.frames[0].shape == avatar.idle.frames[0].shape
    for x, y in BEHIND:
        assert np.abs(out[0][y, x].astype(int) - KEY).max() <= 2, (x, y, out[0][y, x])
    for x, y in PERSON:
        assert np.abs(out[0][y, x].astype(int) - portrait[y, x]).max() <= 2
    # The yuv420p frame the stream airs is the keyed picture too.
    back = cv2.cvtColor(keyed.idle.frames[0], cv2.COLOR_YUV2RGB_I420)
    assert np.abs(back[60, 30].astype(int) - KEY).max() <= 6


def test_a_picture_behind_covers_the_frame(portrait: np.ndarray, tmp_path: Path) -> None:
    stripes = np.zeros((90, 160, 3), np.uint8)
    stripes[:, ::2] = (255, 0, 0)  # BGR: blue columns
    cv2.imwrite(str(tmp_path / "set.png"), stripes)
    picture = Background(image=tmp_path / "set.png").picture(512, 512)
    assert picture.shape == (512, 512, 3) and picture[..., 2].max() > 200  # blue, as RGB
    avatar = Avatar(IdleCycle([rgb_to_frame(portrait)]))  # no RGB kept: from the frames
    out = cv2.cvtColor(with_background(avatar, Background(image=tmp_path / "set.png"))
                       .idle.frames[0], cv2.COLOR_YUV2RGB_I420)
    assert out[30:90, 10:50, 2].mean() > 80  # the set's blue where the flag was
    with pytest.raises(OSError):
        Background(image=tmp_path / "nope.png").picture(10, 10)


@pytest.mark.parametrize("bad", [{}, {"color": "#00b140", "image": "x.png"}, {"color": "green"}])
def test_a_background_is_one_colour_or_one_picture(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Background.model_validate(bad)
