"""The lite animator: mouth shapes from audio, and the lower-face warp on real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import Avatar, for_output
from avatarcast.face.lite import LiteAnimator
from avatarcast.face.mouth import MouthTuning, mouth_shapes
from avatarcast.face.warp import FaceGeometry, WarpTuning, warp

from .faces import PORTRAIT, make_video, voiced

FPS = 30
W, H = 640, 360


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Avatar:
    d = tmp_path_factory.mktemp("avatars")
    return for_output(load(build(PORTRAIT, "astro", d, BuildSettings(FPS, 600, 1920))), W, H,
                      keep_rgb=False)


def test_mouth_closed_in_silence_and_open_with_voice() -> None:
    audio = voiced(1.0)  # 0.3 s silence, 1 s voiced syllables, 0.3 s silence
    frames = len(audio) * FPS // 16000
    opening, width = mouth_shapes(audio, frames, FPS, 16000)
    assert opening.shape == width.shape == (frames,)
    assert np.all((opening >= 0) & (opening <= 1)) and np.all(np.abs(width) <= 1)
    lead = int(0.3 * FPS) - 2
    assert np.all(opening[:lead] == 0) and np.all(opening[-lead:] == 0)
    talking = opening[lead + 2 : -lead - 2]
    assert talking.max() > 0.6
    # Four syllables a second: the mouth closes part way between them (it moves).
    assert talking.max() - talking[5:].min() > 0.3
    # No jitter: a frame never moves further than the attack allows.
    tuning = MouthTuning()
    step = 1 - np.exp(-1 / FPS / tuning.attack_s)
    assert np.abs(np.diff(opening)).max() <= step + 1e-6
    silent, _ = mouth_shapes(np.zeros(16000, np.int16), FPS, FPS, 16000)
    assert not silent.any()


def _planes(frame: np.ndarray) -> np.ndarray:
    return frame[:H].astype(np.int16)


def test_warp_moves_only_the_lower_face(avatar: Avatar) -> None:
    assert avatar.faces is not None
    lm = avatar.faces.landmarks[0]
    idle = avatar.idle.frames[0]
    g = FaceGeometry(lm, W, H, WarpTuning())
    assert warp(idle, g, 0.0, 0.0, WarpTuning()) is idle
    opened = warp(idle, g, 1.0, 0.0, WarpTuning())
    assert opened.shape == idle.shape and opened.dtype == np.uint8
    diff = np.abs(_planes(opened) - _planes(idle))
    x0, y0, x1, y1 = g.roi
    outside = diff.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0, "pixels changed outside the lower face"
    chroma = np.abs(opened[H:].astype(np.int16) - idle[H:].astype(np.int16))
    assert chroma.max() > 0  # the mouth interior has its own colour
    # The mouth opens: between the lips it is now dark; the eyes did not move.
    lips_x = int(lm[13, 0])
    gap = opened[int(lm[13, 1]) + 1 : int(lm[14, 1]) + 6, lips_x]
    assert gap.min() < 60, gap
    eye = (slice(int(lm[159, 1]) - 3, int(lm[145, 1]) + 3), slice(int(lm[33, 0]), int(lm[133, 0])))
    assert diff[eye].max() == 0
    # A wider opening changes more of the face.
    half = np.abs(_planes(warp(idle, g, 0.4, 0.0, WarpTuning())) - _planes(idle))
    assert (half > 10).sum() < (diff > 10).sum()


def test_lite_renders_the_cycle_indices_it_is_given(tmp_path: Path) -> None:
    video = make_video(tmp_path / "idle.mp4")
    a = for_output(load(build(video, "drift", tmp_path, BuildSettings(FPS, 600, 1920))), W, H,
                   keep_rgb=False)
    anim = LiteAnimator(FPS)
    anim.load(a)
    audio = voiced(0.6)
    n = len(audio) * FPS // 16000
    indices = [a.idle.index(k) for k in range(100, 100 + n)]
    batches = list(anim.render(audio, indices))
    frames = [f for b in batches for f in b]
    assert len(frames) == n and all(len(b) <= anim.batch for b in batches)
    # Closed mouth (silence, and the first and last frames): the idle frame of that index,
    # untouched; talking frames differ from their own index's idle frame only a little.
    for k, (c, f) in enumerate(zip(indices, frames, strict=True)):
        idle = a.idle.frames[c]
        if k in (0, n - 1) or k < 5:
            assert f is idle
    talking = [k for k, (c, f) in enumerate(zip(indices, frames, strict=True))
               if f is not a.idle.frames[c]]
    assert len(talking) > n // 3
    for k in talking:
        d = np.abs(_planes(frames[k]) - _planes(a.idle.frames[indices[k]]))
        assert (d > 0).mean() < 0.1  # only the lower face
    # Deterministic.
    again = [f for b in anim.render(audio, indices) for f in b]
    assert all(np.array_equal(x, y) for x, y in zip(frames, again, strict=True))


def test_lite_needs_a_face() -> None:
    from avatarcast.onair.idle import IdleCycle

    with pytest.raises(ValueError, match="prepared avatar"):
        LiteAnimator(FPS).load(Avatar(IdleCycle([np.zeros((H * 3 // 2, W), np.uint8)])))
