"""Framing on the face (avatar/framing.py and prepare): the box math on made-up faces, then
the embedded portrait framed at 1280x720 and measured with the project's own landmarker, the
cache's staleness across framings, and what prepare and doctor say about sharpness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarcast.app.cli.doctor import _avatar
from avatarcast.avatar import framing
from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.framing import Box, FaceSpan, face_box, sharpness
from avatarcast.avatar.prepare import build, load, stale_reason
from avatarcast.avatar.runtime import for_output
from avatarcast.avatar.track import FaceTracker
from avatarcast.settings import Settings

from ..faces import PORTRAIT, make_video

ASPECT = 16 / 9
SHARE = 0.35
FACE = 100.0  # brow to chin of the made-up faces, px


def face(cx: float, brow: float, height: float = FACE) -> FaceSpan:
    """A face shaped like the portrait's: the mesh from 0.24 face heights above the brows to
    the chin, eyes 0.16 below the brows, 1.1 face heights wide."""
    return FaceSpan(brow=brow, eyes=brow + 0.16 * height, chin=brow + height, centre=cx,
                    left=cx - 0.55 * height, top=brow - 0.24 * height,
                    right=cx + 0.55 * height, bottom=brow + height)


def holds(box: Box, f: FaceSpan) -> bool:
    """The box shows the face, its hair and margins (to a pixel: boxes are even)."""
    x0, y0, x1, y1 = f.needs()
    return (box.x <= x0 + 1 and box.y <= y0 + 1 and x1 <= box.x + box.w + 1
            and y1 <= box.y + box.h + 1)


def of_aspect(box: Box) -> bool:
    return framing.fills(box.w, box.h, 1280, 720)


def test_the_face_takes_its_share_of_a_box_of_the_output_aspect() -> None:
    f = face(1000, 900)
    box = face_box([f], 2000, 2000, ASPECT, SHARE)
    assert abs(box.h - FACE / SHARE) <= 2 and abs(box.w / box.h - ASPECT) < 0.01
    assert not box.letterbox and holds(box, f) and of_aspect(box)
    assert abs(box.x + box.w / 2 - f.centre) <= 2  # centred on the face
    # The eyes near the upper third (lower when the hair needs the room), the chin above the
    # bottom quarter: neck and shoulders below it.
    assert 0.3 <= (f.eyes - box.y) / box.h <= 0.42
    assert (f.chin - box.y) / box.h <= 0.75
    # Room above the mesh's top (the hairline) for the hair.
    assert f.top - box.y >= 0.6 * FACE
    assert all(v % 2 == 0 for v in box.as_list())
    # A larger share: a tighter box.
    assert face_box([f], 2000, 2000, ASPECT, 0.45).h < box.h


@pytest.mark.parametrize(("cx", "brow", "edge"), [
    (60, 900, "left"), (1940, 900, "right"), (1000, 20, "top"), (1000, 1880, "bottom")])
def test_the_box_is_shifted_inside_the_source_at_each_edge(
        cx: float, brow: float, edge: str) -> None:
    box = face_box([face(cx, brow)], 2000, 2000, ASPECT, SHARE)
    assert abs(box.h - FACE / SHARE) <= 2  # the size it wants: only moved
    assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 2000 and box.y + box.h <= 2000
    at = {"left": box.x, "right": 2000 - box.x - box.w, "top": box.y,
          "bottom": 2000 - box.y - box.h}
    assert at[edge] == 0, (edge, box)


def test_a_source_too_small_for_the_box_gives_the_largest_box_of_its_aspect() -> None:
    f = face(300, 60)
    box = face_box([f], 600, 240, ASPECT, SHARE)  # wants 286 px of height, has 240
    assert (box.w, box.h) == (426, 240) and box.y == 0 and not box.letterbox
    assert abs(box.x + box.w / 2 - f.centre) <= 2
    # Wider than it is tall but not by the output's aspect: the whole height, its aspect.
    box = face_box([face(200, 100)], 400, 300, ASPECT, SHARE)
    assert (box.w, box.h) == (400, 224) and not box.letterbox


def test_a_source_too_narrow_for_the_aspect_keeps_its_width_letterboxed() -> None:
    # A 9:16 phone portrait: a 16:9 box of its full width (169 px high) cannot hold the
    # head, so the box is as wide as the source and as high as the share wants.
    f = face(150, 400)
    box = face_box([f], 300, 800, ASPECT, SHARE)
    assert box.letterbox and (box.x, box.w) == (0, 300) and not of_aspect(box)
    assert abs(box.h - FACE / SHARE) <= 2 and holds(box, f)
    # Narrow, but its full-width 16:9 box holds the head: cut, no bars.
    wide = face_box([face(200, 300, height=60)], 400, 800, ASPECT, SHARE)
    assert not wide.letterbox and of_aspect(wide) and wide.w < 400


def test_a_clip_gets_one_box_from_its_median_face_holding_every_face() -> None:
    faces = [face(cx, 900) for cx in range(700, 1301, 50)]  # 600 px of sway
    box = face_box(faces, 3000, 2000, ASPECT, SHARE)
    assert all(holds(box, f) for f in faces)
    assert box.h > FACE / SHARE + 100  # grown to hold them: the face is a smaller share
    assert abs(box.x + box.w / 2 - 1000) <= 2  # about the median
    # A steady clip with one odd frame: the box is placed by the median face (not the first
    # frame's, not the mean), of the median's size, and still holds the odd one.
    steady = [face(1100, 900), *(face(1000, 900) for _ in range(4)), face(1010, 900)]
    box = face_box(steady, 3000, 2000, ASPECT, SHARE)
    assert abs(box.x + box.w / 2 - 1000) <= 2 and abs(box.h - FACE / SHARE) <= 2
    assert all(holds(box, f) for f in steady)


def test_build_settings_frame_images_not_videos_and_share_a_cache_across_sizes() -> None:
    auto = BuildSettings(30, 600, 1920)
    assert auto.framing_for(True) == "face" and auto.framing_for(False) == "source"
    # A source framing records what caches recorded before framing existed.
    assert auto.as_dict(False) == {"fps": 30, "max_frames": 600, "max_side": 1920}
    assert auto.as_dict(True)["framing"] == "face" and auto.as_dict(True)["face_share"] == SHARE
    at = [BuildSettings(30, 600, 1920, aspect=w / h).as_dict(True)
          for w, h in ((854, 480), (1280, 720), (1920, 1080))]
    assert at[0] == at[1] == at[2]
    assert BuildSettings(30, 600, 1920, aspect=4 / 3).as_dict(True) != at[1]
    assert BuildSettings(30, 600, 1920, face_share=0.4).as_dict(True) != at[1]
    assert BuildSettings(30, 600, 1920, framing="face").as_dict(False)["framing"] == "face"


def test_sharpness_says_the_scale_and_what_source_would_be_sharp() -> None:
    framed = {"size": [422, 236], "framing": {"mode": "face", "source_size": [512, 512],
                                              "box": [14, 8, 422, 236]}}
    soft = sharpness(framed, 1280, 720)
    assert soft.soft and abs(soft.scale - 720 / 236) < 0.01
    assert "422x236" in soft.text and "3.05x" in soft.text and "1042x1042" in soft.text
    assert not sharpness(framed, 480, 270).soft
    # The box was cut from a larger source but scaled down to max_side: raise that instead.
    capped = {"size": [422, 236], "framing": {"mode": "face", "source_size": [4000, 3000],
                                              "box": [100, 100, 1688, 944]}}
    assert "avatar.max_side" in sharpness(capped, 1280, 720).text
    plain = {"size": [512, 512], "framing": {"mode": "source", "source_size": [512, 512]}}
    assert not sharpness(plain, 1280, 720).soft  # 1.41x, letterboxed
    assert sharpness(plain, 1920, 1080).soft
    assert framing.fills(422, 236, 1280, 720) and not framing.fills(512, 512, 1280, 720)


# The embedded portrait, framed for real and measured with the project's own landmarker.

BROWS = list(framing.BROWS)


@pytest.fixture(scope="module")
def framed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(PORTRAIT, "framed", tmp_path_factory.mktemp("avatars"),
                 BuildSettings(30, 600, 1920, framing="face"))


def _measure(rgb: np.ndarray) -> tuple[float, float, float, float]:
    """Brow to chin, the chin's height, the face's centre x and the hairline's height."""
    lm = FaceTracker().find(rgb)
    assert lm is not None
    brow, chin = float(lm[BROWS, 1].mean()), float(lm[framing.CHIN, 1])
    return chin - brow, chin, float(lm[:, 0].min() + lm[:, 0].max()) / 2, float(lm[:, 1].min())


def test_the_portrait_framed_on_its_face_reads_on_a_phone(framed: Path) -> None:
    p = load(framed)
    record = p.manifest["framing"]
    assert record["mode"] == "face" and record["source_size"] == [512, 512]
    x, y, w, h = record["box"]
    assert p.manifest["size"] == [w, h] and p.frames[0].shape == (h, w, 3)
    assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512
    a = for_output(p, 1280, 720, keep_rgb=True)
    assert a.rgb is not None and a.faces is not None
    rgb = a.rgb[0]
    assert not (rgb[:, :4] == (16, 20, 24)).all()  # filled: no letterbox bars
    height, chin, cx, hairline = _measure(rgb)
    assert height >= 720 / 3, height  # 257 px; letterboxed it was 134
    assert abs(cx - 640) < 0.05 * 1280, cx
    assert chin < 0.75 * 720, chin  # neck and shoulders below
    assert hairline > 0.15 * 720, hairline  # room for the hair above
    # The stored landmarks are the frames' own: they land where the landmarker finds them.
    lm = a.faces.landmarks[0]
    assert abs((lm[framing.CHIN, 1] - lm[BROWS, 1].mean()) - height) < 0.03 * height


def test_the_portrait_as_its_source_keeps_the_wide_shot(tmp_path: Path) -> None:
    p = load(build(PORTRAIT, "wide", tmp_path, BuildSettings(30, 600, 1920, framing="source")))
    assert p.manifest["size"] == [512, 512] and "box" not in p.manifest["framing"]
    a = for_output(p, 1280, 720, keep_rgb=True)
    assert a.rgb is not None
    assert (a.rgb[0][:, :200] == (16, 20, 24)).all()  # letterboxed
    height, _, _, _ = _measure(a.rgb[0])
    assert 0.15 * 720 < height < 0.22 * 720, height


def test_a_cache_of_one_framing_is_stale_for_the_other(framed: Path) -> None:
    face = BuildSettings(30, 600, 1920, framing="face")
    assert stale_reason(framed, "framed", face, PORTRAIT) is None
    assert stale_reason(framed, "framed", BuildSettings(30, 600, 1920), PORTRAIT) is None  # auto
    reason = stale_reason(framed, "framed", BuildSettings(30, 600, 1920, framing="source"),
                          PORTRAIT)
    assert reason is not None and "'framing': 'face'" in reason
    for other in (BuildSettings(30, 600, 1920, framing="face", face_share=0.4),
                  BuildSettings(30, 600, 1920, framing="face", aspect=4 / 3)):
        assert stale_reason(framed, "framed", other, PORTRAIT) is not None


def test_a_video_framed_on_its_face_has_one_box(tmp_path: Path) -> None:
    video = make_video(tmp_path / "idle.mp4")  # the face drifts 2 px a frame
    p = load(build(video, "clip", tmp_path / "avatars",
                   BuildSettings(30, 600, 1920, framing="face")))
    _, _, w, h = p.manifest["framing"]["box"]
    assert p.manifest["size"] == [w, h] and {f.shape for f in p.frames} == {(h, w, 3)}
    assert len(p.frames) == 16 and p.found.sum() == 16 - 3  # the faceless frames stay
    # Landmarks in the box's pixels, inside it, still drifting with the face.
    assert (p.landmarks[..., 0] > 0).all() and (p.landmarks[..., 0] < w).all()
    nose = p.landmarks[:, 1, 0]
    assert nose[0] - nose[-1] > 10, nose


def test_doctor_says_the_portrait_is_soft_at_1080p(framed: Path) -> None:
    avatars = framed.parent
    rows = {r.check: r for r in _avatar(Settings(
        _env_file=None, avatar={"id": "framed", "avatars_dir": avatars},
        video={"width": 1920, "height": 1080}))}
    assert rows["avatar"].status == "ok"
    row = rows["avatar sharpness"]
    assert row.status == "warn" and "face crop 422x236" in row.detail
    assert "scaled up 4.58x to 1920x1080" in row.detail and "would be sharp" in row.detail
    small = {r.check: r for r in _avatar(Settings(
        _env_file=None, avatar={"id": "framed", "avatars_dir": avatars},
        video={"width": 480, "height": 270}))}
    assert small["avatar"].status == "ok"  # one cache for every output of its aspect
    assert small["avatar sharpness"].status == "ok"
    assert "drawn at 1.14x in 480x270" in small["avatar sharpness"].detail


def test_the_still_animator_frames_on_the_face_only_when_told(tmp_path: Path) -> None:
    from avatarcast.avatar.loader import load_avatar
    from avatarcast.settings import AvatarSettings, VideoSettings

    video = VideoSettings(width=640, height=360)
    # auto, without a face animator: the idle source as it is (no face needed, none sought).
    plain = load_avatar(AvatarSettings(avatars_dir=tmp_path), video, False, False)
    assert plain.faces is None and not (tmp_path / "auto-avatar").exists()
    # face: prepared, so the picture is the one a face animator would show.
    framed = load_avatar(AvatarSettings(avatars_dir=tmp_path, framing="face"), video, False,
                         False)
    assert framed.faces is not None and (tmp_path / "auto-avatar").is_dir()
    assert plain.idle.frames[0][:360, :8].std() == 0  # letterboxed: a bar at the side
    assert framed.idle.frames[0][:360, :8].std() > 5  # filled with the picture
