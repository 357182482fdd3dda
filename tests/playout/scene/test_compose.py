"""The scene's layers on a frame: blended exactly over their own rectangle (clipped at the
picture's edges), the AI label there by default, the logo in its corner, the ticker moving at
its speed, the lower third sliding in to its place; a scene file that cannot be used is one
clear line naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatarcast.media.frames import blank, chroma_planes
from avatarcast.playout.scene.compose import Compositor
from avatarcast.playout.scene.layer import Layer, lay
from avatarcast.playout.scene.spec import (
    AiLabel,
    Logo,
    LowerThird,
    Scene,
    SceneError,
    SceneSettings,
    Ticker,
    load_scene,
)

W, H, FPS = 640, 360, 30


def _gray(value: int = 100) -> np.ndarray:
    f = blank(W, H)
    f[:H] = value
    return f


def test_a_layer_is_blended_over_its_rectangle_only_and_clipped() -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = 255
    rgba[:, :2, 3] = 0  # transparent columns
    rgba[:, 2:4, 3] = 128  # half
    layer = Layer.from_rgba(rgba)
    f = _gray(100)
    lay(f, layer, 10, 20)
    assert (f[20:24, 10:12] == 100).all()
    assert abs(int(f[20, 12]) - round(235 * 128 / 255 + 100 * 127 / 255)) <= 1
    assert f[20, 14] >= 234 and (f[19] == 100).all() and (f[24, :] == 100).all()
    assert (f[:H, :10] == 100).all() and (f[:H, 16:] == 100).all()
    u, _ = chroma_planes(f)
    assert (u == 128).all()  # white over gray: no colour either way
    edge = _gray(100)
    lay(edge, layer, W - 2, H - 2)  # only its top-left 2x2 is in the picture
    lay(edge, layer, -100, -100)  # none of it
    assert (edge[:H - 2] == 100).all() and (edge[H - 2:H, :W - 2] == 100).all()


def test_the_ai_label_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    scene, _ = load_scene(SceneSettings())
    assert scene.ai_label == AiLabel(text="AI-generated")
    c = Compositor(scene, tmp_path, W, H, FPS)
    f = _gray(60)
    c.draw(f, 0)
    changed = np.argwhere(f[:H] != 60)
    assert changed.size, "no label drawn"
    ys, xs = changed[:, 0], changed[:, 1]
    assert xs.min() > W / 2 and ys.max() < H / 4  # top-right
    assert f[:H].max() >= 230  # white letters
    off, _ = load_scene(SceneSettings(ai_label=False))
    assert off.ai_label is not None and not off.ai_label.enabled


def test_logo_ticker_and_lower_third_where_and_when_they_should_be(tmp_path: Path) -> None:
    Image.new("RGBA", (50, 50), (255, 0, 0, 255)).save(tmp_path / "logo.png")
    scene = Scene(logo=Logo(path=Path("logo.png"), height=0.1, corner="top-left"),
                  ai_label=AiLabel(enabled=False), ticker=Ticker(text="News " * 10, speed=0.3),
                  lower_third=LowerThird(title="Avatar Live", enter_s=0.5))
    c = Compositor(scene, tmp_path, W, H, FPS)
    frames = []
    for n in range(20):
        f = _gray(100)
        c.draw(f, n)
        frames.append(f)
    m = round(H * 0.03) // 2 * 2
    side = round(H * 0.1)
    _u, v = chroma_planes(frames[0])
    red = v[m // 2 + 2:(m + side) // 2 - 2, m // 2 + 2:(m + side) // 2 - 2]
    assert (red > 200).all()  # V of pure red
    # The ticker's band at the bottom moves 0.3 picture widths a second: 6.4 px a frame.
    band = [f[H - 10, :].astype(np.int16) for f in frames]
    shifts = [int(np.argmin([np.abs(band[k + 1][:W - 40] - band[k][s:W - 40 + s]).sum()
                             for s in range(0, 20)])) for k in range(10)]
    assert 6.0 <= np.mean(shifts) <= 6.8, shifts
    # The lower third slides in from the left and stays at the margin after 0.5 s.
    assert c._look.lower is not None
    band = slice(round(H * 0.78) - c._look.lower.size[1], round(H * 0.78))

    def left_edge(f: np.ndarray) -> int | None:
        drawn = np.flatnonzero((f[band] != 100).any(axis=0))
        return int(drawn[0]) if drawn.size else None

    assert left_edge(frames[0]) == 0  # coming in from the first frame
    assert left_edge(frames[5]) == 0 and left_edge(frames[19]) == left_edge(frames[15]) == m


def test_a_scene_file_that_cannot_be_used_is_one_clear_line(tmp_path: Path) -> None:
    cases = {
        "[logo]\npath = 'nope.png'\n": "logo.path: ",
        "[ticker]\ntext = 'x'\nspeed = 9\n": "ticker.speed: ",
        "[clock]\ntimezone = 'Mars/Base'\n": "not an IANA time zone",
        "[lower_third]\nsubtitle = 'x'\n": "lower_third.title: Field required",
        "[logo\n": "not TOML",
        "[nope]\n": "nope: Extra inputs",
        "[music]\nfolder = 'no-such-folder'\n": "music.folder: ",
        "[music]\nfolder = '.'\nduck_db = 2\n": "music.duck_db: ",
    }
    for text, expected in cases.items():
        (tmp_path / "scene.toml").write_text(text)
        with pytest.raises(SceneError) as info:
            load_scene(SceneSettings(file=tmp_path / "scene.toml"))
        assert expected in str(info.value) and "\n" not in str(info.value), (text, info.value)


def test_layers_change_live_on_a_frame_boundary_and_bad_changes_change_nothing(
    tmp_path: Path,
) -> None:
    c = Compositor(Scene(ai_label=AiLabel()), tmp_path, W, H, FPS)

    def drawn(n: int) -> np.ndarray:
        f = _gray(100)
        c.draw(f, n)
        return f

    label_only = drawn(0)
    # Not in the scene, and nothing to make it from: refused, nothing changes.
    assert "the logo is not in this channel's scene" in (c.apply("logo", visible=True) or "")
    assert "send a title with it" in (c.apply("lower_third", visible=True) or "")
    assert "no music in this channel's scene" in (c.apply("music", visible=True) or "")
    assert (drawn(1) == label_only).all()
    # A lower third made live: it slides in from the next frame on, and out when hidden.
    assert c.apply("lower_third", visible=True, title="Breaking", subtitle="News") is None
    assert c._look.lower is not None
    middle = round(H * 0.78) - c._look.lower.size[1] // 2
    seen = [bool((drawn(n)[middle] != 100).any()) for n in range(2, 30)]
    assert seen[0] and all(seen)
    assert c.apply("ai_label", visible=False) is None
    assert c.apply("lower_third", visible=False) is None
    gone = [bool((drawn(n)[middle] != 100).any()) for n in range(30, 60)]
    assert gone[0] and not gone[-1]  # sliding out, then out
    assert (drawn(61)[:H] == 100).all()  # the label hidden too
    assert c.apply("ticker", text="Hello ticker") is None  # made live, shown when asked
    assert (drawn(62)[:H] == 100).all()
    assert c.apply("ticker", visible=True) is None
    assert (drawn(63)[H - 5] != 100).any()


class _Video:
    """A video whose frame n is all luma 50 + n."""

    closed = False

    def __init__(self) -> None:
        self.asked: list[int] = []

    def at(self, n: int) -> np.ndarray:
        self.asked.append(n)
        return _gray(50 + n)


def test_a_moving_background_goes_behind_the_person_each_tick_under_the_layers() -> None:
    from avatarcast.media.frames import mask_frame
    from avatarcast.media.idle import Behind, IdleCycle
    from avatarcast.onair.tick import TickOutput

    person = np.zeros((H, W), np.float32)
    person[:, W // 2:] = 1.0  # the person on the right half of frame 0, the left of frame 1
    masks = [mask_frame(person), mask_frame(person[:, ::-1].copy())]
    video = _Video()
    idle = IdleCycle([_gray(200), _gray(210)], behind=Behind(masks, video))
    comp = Compositor(Scene(ai_label=AiLabel(corner="top-left")), Path("."), W, H, FPS)
    shared = idle.frames[0].copy()
    for n in (0, 1, 2):
        out = TickOutput(idle.frame(n), np.zeros(1600, np.int16), shown=idle)
        comp(n, out)
        y = out.frame[:H]
        i = idle.index(n)
        right = slice(W // 2, None) if i == 0 else slice(0, W // 2)
        left = slice(0, W // 2) if i == 0 else slice(W // 2, None)
        assert (y[H // 2:, right] == 200 + 10 * i).all()  # the person, as they were
        assert (y[H // 2:, left] == 50 + n).all()  # the video's frame of this tick behind
        assert (y[12:20, 12:60] != 50 + n).mean() > 0.9  # ... and the AI label over it
    assert video.asked == [0, 1, 2] and np.array_equal(idle.frames[0], shared)
    # The motion's moved mask, when there is one, is the one used.
    moved = mask_frame(np.ones((H, W), np.float32))
    out = TickOutput(idle.frame(3), np.zeros(1600, np.int16), shown=idle, mask=moved)
    comp(3, out)
    assert (out.frame[H // 2:H] == 210).all()


def test_the_moving_background_outlives_a_fault_in_a_layer_and_a_closed_video() -> None:
    """A bug in a layer stops the layers, not the video behind the person (a still background
    is in the frames and survives such a fault too); frames made over a video since replaced
    and closed air over the one playing now."""
    from avatarcast.media.frames import mask_frame
    from avatarcast.media.idle import Behind, IdleCycle
    from avatarcast.onair.tick import TickOutput

    person = np.zeros((H, W), np.float32)
    person[:, W // 2:] = 1.0
    old, new = _Video(), _Video()
    made_over_old = IdleCycle([_gray(200)], behind=Behind([mask_frame(person)], old))
    made_over_new = IdleCycle([_gray(200)], behind=Behind([mask_frame(person)], new))
    comp = Compositor(Scene(ai_label=AiLabel()), Path("."), W, H, FPS)

    def broken(*_: object) -> None:
        raise RuntimeError("a layer's bug")

    comp.draw = broken  # type: ignore[method-assign]
    out = TickOutput(made_over_new.frame(0), np.zeros(1600, np.int16), shown=made_over_new)
    comp(0, out)
    assert comp.failed is not None and comp.video_failed is None
    assert (out.frame[:H, : W // 2] == 50).all()  # the video still behind
    out = TickOutput(made_over_new.frame(1), np.zeros(1600, np.int16), shown=made_over_new)
    comp(1, out)
    assert (out.frame[:H, : W // 2] == 51).all() and new.asked == [0, 1]
    old.closed = True
    out = TickOutput(made_over_old.frame(2), np.zeros(1600, np.int16), shown=made_over_old)
    comp(2, out)
    assert old.asked == [] and new.asked == [0, 1, 2]
    assert (out.frame[:H, : W // 2] == 52).all() and (out.frame[:H, W // 2:] == 200).all()
