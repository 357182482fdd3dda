"""The lite animator: mouth shapes from audio, and the still-image mouth on real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.face.lipgeometry import LipGeometry
from avatarcast.avatar.face.lite import LiteAnimator
from avatarcast.avatar.face.mouth import MouthTuning, mouth_shapes
from avatarcast.avatar.face.mouthtrack import from_audio
from avatarcast.avatar.face.visemes import POSES
from avatarcast.avatar.face.warp import REST, WarpTuning, sampling_step, warp
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import Avatar, for_output

from ...faces import PORTRAIT, make_video, voiced

FPS = 30
W, H = 640, 360


@pytest.fixture(scope="module", params=[(320, 180), (W, H), (1280, 720)],
                ids=["180p", "360p", "720p"])
def avatar(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Avatar:
    """The portrait at three sizes: at 180p its mouth (36 px wide) is worked out at every
    pixel, from 360p on (72 px, 144 px at 720p) at every second one (warp.sampling_step)."""
    d = tmp_path_factory.mktemp("avatars")
    w, h = request.param
    avatar = for_output(load(build(PORTRAIT, "astro", d, BuildSettings(FPS, 600, 1920))), w, h,
                        keep_rgb=False)
    assert sampling_step(_geometry(avatar)[2]) == (1 if h < H else 2)
    return avatar


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


def test_a_dark_voice_is_not_pursed_all_along() -> None:
    """Spread and rounding from the sound are relative to the voice: a voice darker than the
    tuning's neutral does not round the lips for its whole length."""
    audio = voiced(1.5)  # harmonics of 140 Hz: a dark, steady vowel
    frames = len(audio) * FPS // 16000
    opening, width = mouth_shapes(audio, frames, FPS, 16000)
    talking = opening > 0.3
    assert talking.sum() > 10
    assert abs(float(width[talking].mean())) < 0.25, width[talking]


def _planes(frame: np.ndarray) -> np.ndarray:
    """Its luma plane."""
    return frame[:frame.shape[0] * 2 // 3].astype(np.int16)


def _geometry(avatar: Avatar) -> tuple[np.ndarray, np.ndarray, LipGeometry]:
    assert avatar.faces is not None
    lm, idle = avatar.faces.landmarks[0], avatar.idle.frames[0]
    return lm, idle, LipGeometry(lm, idle, WarpTuning().jaw_drop)


def _dark(frame: np.ndarray, idle: np.ndarray, g: LipGeometry) -> np.ndarray:
    """Pixels around the mouth that are dark now and were not in the idle picture."""
    x0, x1 = int(g.m[0] - 1.3 * g.a), int(g.m[0] + 1.3 * g.a)
    y0, y1 = int(g.m[1] - 0.6 * g.a), int(g.m[1] + 1.2 * g.a)
    return np.asarray((frame[y0:y1, x0:x1] < 60) & (idle[y0:y1, x0:x1] >= 60))


def _dark_extent(frame: np.ndarray, idle: np.ndarray, g: LipGeometry) -> tuple[int, int]:
    """Width and height (pixels) of the dark mouth cavity."""
    dark = _dark(frame, idle, g)
    cols, rows = np.flatnonzero(dark.any(0)), np.flatnonzero(dark.any(1))
    if not len(cols):
        return 0, 0
    return int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def test_warp_moves_only_the_lower_face(avatar: Avatar) -> None:
    lm, idle, g = _geometry(avatar)
    t = WarpTuning()
    assert warp(idle, g, REST, t) is idle
    opened = warp(idle, g, POSES["aa"], t)
    assert opened.shape == idle.shape and opened.dtype == np.uint8
    diff = np.abs(_planes(opened) - _planes(idle))
    x0, y0, x1, y1 = g.roi
    outside = diff.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0, "pixels changed outside the lower face"
    h = idle.shape[0] * 2 // 3
    chroma = np.abs(opened[h:].astype(np.int16) - idle[h:].astype(np.int16))
    assert chroma.max() > 0  # the mouth cavity has its own colour
    eye = (slice(int(lm[159, 1]) - 3, int(lm[145, 1]) + 3), slice(int(lm[33, 0]), int(lm[133, 0])))
    assert diff[eye].max() == 0
    # No seam: at the edge of the region worked on, nothing moved.
    border = np.concatenate([diff[y0, x0:x1], diff[y1 - 1, x0:x1], diff[y0:y1, x0],
                             diff[y0:y1, x1 - 1]])
    assert border.max() <= 1
    # A wider opening changes more of the face.
    half = np.abs(_planes(warp(idle, g, POSES["I"], t)) - _planes(idle))
    assert (half > 10).sum() < (diff > 10).sum()


def test_the_teeth_stay_with_the_upper_jaw_and_only_the_gap_darkens(avatar: Avatar) -> None:
    """The portrait smiles with its upper teeth showing: opening the jaw keeps them where
    they are and opens a dark gap below them, above the dropped lower lip."""
    _, idle, g = _geometry(avatar)
    assert g.shows_teeth
    opened = warp(idle, g, POSES["aa"], WarpTuning())
    top = float(g.at(g.inner_upper, np.zeros(1, np.float32))[0])
    split = float(g.at(g.split, np.zeros(1, np.float32))[0])
    xs, ys = zip(*(g.point(u, v) for u in (-0.1, 0.0, 0.1)
                   for v in np.linspace(top + 1.5, split - 1.5, 5)), strict=True)
    rows, cols = np.round(ys).astype(int), np.round(xs).astype(int)
    teeth_before, teeth_after = idle[rows, cols].astype(int), opened[rows, cols].astype(int)
    assert teeth_before.mean() > 150  # bright teeth ...
    assert np.abs(teeth_after - teeth_before).max() <= 12  # ... still there, unmoved
    below = [opened[round(y), round(x)] for x, y in (g.point(0.0, split + k) for k in range(2, 8))]
    assert min(below) < 60, below  # the gap under them is dark


def test_shapes_differ_as_the_sounds_do(avatar: Avatar) -> None:
    _, idle, g = _geometry(avatar)
    t = WarpTuning()
    w_aa, h_aa = _dark_extent(warp(idle, g, POSES["aa"], t), idle, g)
    w_e, _ = _dark_extent(warp(idle, g, POSES["E"], t), idle, g)
    w_o, h_o = _dark_extent(warp(idle, g, POSES["O"], t), idle, g)
    w_u, h_u = _dark_extent(warp(idle, g, POSES["U"], t), idle, g)
    print(f"cavity w x h: aa {w_aa}x{h_aa}, E {w_e}, O {w_o}x{h_o}, U {w_u}x{h_u}")
    assert h_aa > h_u > 0 and w_o < w_e  # open wide vs. a small round opening; round is narrow
    assert w_o / h_o < w_aa / h_aa  # rounder
    # m/b/p: lips together over the teeth, no gap; f/v: no gap either.
    for closed in ("PP", "FF"):
        frame = warp(idle, g, POSES[closed], t)
        # At most a stray pixel or two in the lips' corners (each corner's own shadow): 4 px²
        # where the mouth was 32 px wide (the portrait letterboxed), as much of the face
        # framed larger. (Counted, not boxed: at 720p a speck in each corner spans the mouth.)
        assert _dark(frame, idle, g).sum() <= (0.13 * g.a) ** 2, (closed, g.a)
    # Pressed lips cover the teeth: between the lips it is lip now, darker than the teeth.
    pressed = warp(idle, g, POSES["PP"], t)
    top = float(g.at(g.inner_upper, np.zeros(1, np.float32))[0])
    bottom = float(g.at(g.inner_lower, np.zeros(1, np.float32))[0])
    spots = [g.point(u, v) for u in (-0.3, -0.15, 0.0, 0.15, 0.3)
             for v in np.linspace(top + 1, bottom - 1, 3)]
    rows, cols = (np.round([[y for _, y in spots], [x for x, _ in spots]]).astype(int))
    before, after = float(idle[rows, cols].mean()), float(pressed[rows, cols].mean())
    print(f"between the lips: teeth {before:.0f}, pressed lips {after:.0f}")
    assert after < before - 15


def test_lite_renders_the_cycle_indices_it_is_given(tmp_path: Path) -> None:
    video = make_video(tmp_path / "idle.mp4")
    a = for_output(load(build(video, "drift", tmp_path, BuildSettings(FPS, 600, 1920))), W, H,
                   keep_rgb=False)
    anim = LiteAnimator(FPS)
    anim.load(a)
    audio = voiced(0.6)
    n = len(audio) * FPS // 16000
    indices = [a.idle.index(k) for k in range(100, 100 + n)]
    track = from_audio(audio, n, FPS, 16000)
    batches = list(anim.render(audio, indices, track))
    frames = [f for b in batches for f in b]
    assert len(frames) == n and all(len(b) <= anim.batch for b in batches)
    # The first frame goes out alone: a segment can air as soon as it is drawn.
    assert [len(b) for b in batches[:4]] == [1, 2, 4, anim.batch]
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
    again = [f for b in anim.render(audio, indices, track) for f in b]
    assert all(np.array_equal(x, y) for x, y in zip(frames, again, strict=True))


def test_lite_needs_a_face() -> None:
    from avatarcast.media.idle import IdleCycle

    with pytest.raises(ValueError, match="prepared avatar"):
        LiteAnimator(FPS).load(Avatar(IdleCycle([np.zeros((H * 3 // 2, W), np.uint8)])))
