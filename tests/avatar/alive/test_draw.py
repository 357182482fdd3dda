"""The motion drawn on a real portrait: the lids close over the eyes, the brows lift, the
gaze moves, the head turns and shifts, the body breathes; nothing else changes."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from avatarcast.avatar import mesh
from avatarcast.avatar.alive.driver import Motion
from avatarcast.avatar.alive.stage import draw
from avatarcast.media.frames import Frame

from .conftest import H, Shot


def _luma(frame: Frame) -> npt.NDArray[np.uint8]:
    return frame[: frame.shape[0] * 2 // 3]


def _eye_mask(lm: npt.NDArray[np.float32], upper: tuple[int, ...],
              lower: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    poly = np.concatenate([lm[list(upper), :2], lm[list(lower)[::-1], :2]]).astype(np.int32)
    mask = np.zeros((H, H * 16 // 9), np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    return mask.astype(bool)


def test_at_rest_the_frame_is_the_picture_itself(shot: Shot) -> None:
    out = draw(shot.frame, shot.rig, 0, Motion())
    assert out is not shot.frame  # a new frame: the idle picture is shared, never written
    assert np.array_equal(out, shot.frame)


def test_closed_lids_cover_the_iris_and_the_white_with_skin(shot: Shot) -> None:
    before = _luma(shot.frame)
    shut = _luma(draw(shot.frame, shot.rig, 0, Motion(lids=1.0)))
    half = _luma(draw(shot.frame, shot.rig, 0, Motion(lids=0.5)))
    for upper, lower in ((mesh.RIGHT_UPPER_LID, mesh.RIGHT_LOWER_LID),
                         (mesh.LEFT_UPPER_LID, mesh.LEFT_LOWER_LID)):
        eye = _eye_mask(shot.landmarks, upper, lower)
        rows = np.flatnonzero(eye.any(axis=1))
        # The opening's upper 60 %: open, the iris (dark) and the white; shut, the lid's skin
        # (the lashes along the lid's edge stay dark, at the bottom).
        top = eye.copy()
        top[rows[0] + int(0.6 * len(rows)):] = False
        p10, p50 = np.percentile(before[top], [10, 50])
        s10, s50 = np.percentile(shut[top], [10, 50])
        assert s10 > p10 + 35 and s50 > p50 + 50, ((p10, p50), (s10, s50))
        assert np.std(shut[top]) < np.std(before[top])
        # Half way, the lid is on its way: the top darkest pixels are partly covered, the
        # bottom of the opening is still the eye.
        h10 = np.percentile(half[top], 10)
        assert p10 + 8 < h10 < s10 - 15, (p10, h10, s10)
        bottom = eye.copy()
        bottom[: rows[0] + int(0.7 * len(rows))] = False
        assert abs(float(np.mean(half[bottom])) - float(np.mean(before[bottom]))) < 15
    # Only the eyes' regions changed.
    ys = np.flatnonzero(np.any(shut != before, axis=1))
    assert ys.min() > shot.landmarks[list(mesh.RIGHT_BROW_UPPER), 1].min() - 40
    assert ys.max() < shot.landmarks[list(mesh.RIGHT_LOWER_LID + mesh.LEFT_LOWER_LID), 1].max() + 40


def test_the_head_moves_by_what_the_motion_says(shot: Shot) -> None:
    face = shot.rig.at(0).pose.face
    lm0 = shot.landmarks
    moved = draw(shot.frame, shot.rig, 0, Motion(head_x=0.03, head_y=-0.02))
    lm1 = shot.landmarks_of(moved)
    stable = list((33, 133, 362, 263, 168, 6, 1))
    shift = (lm1[stable, :2] - lm0[stable, :2]).mean(0)
    assert np.allclose(shift, (0.03 * face, -0.02 * face), atol=0.25 * 0.03 * face), shift

    turned = draw(shot.frame, shot.rig, 0, Motion(roll=2.0))
    lm2 = shot.landmarks_of(turned)

    def roll(lm: npt.NDArray[np.float32]) -> float:
        d = lm[263, :2] - lm[33, :2]
        return float(np.degrees(np.arctan2(d[1], d[0])))

    assert abs(roll(lm2) - roll(lm0) - 2.0) < 0.6, roll(lm2) - roll(lm0)
    # The background beside the head (the frame's top corners) does not move.
    y = _luma(moved)
    x = _luma(shot.frame)
    assert np.array_equal(y[:40, :60], x[:40, :60])
    assert np.array_equal(y[:40, -60:], x[:40, -60:])


def test_a_breath_lifts_the_shoulders_and_not_the_top_of_the_picture(shot: Shot) -> None:
    face = shot.rig.at(0).pose.face
    rise = 0.03  # of the face's height
    breathed = _luma(draw(shot.frame, shot.rig, 0, Motion(rise=rise))).astype(np.float32)
    still = _luma(shot.frame).astype(np.float32)
    chin = int(shot.landmarks[152, 1])
    cx = int(shot.landmarks[1, 0])
    # Phase correlation on a band of the chest below the chin: how far it moved up.
    band = slice(chin + int(0.5 * face), min(H - 10, chin + int(0.9 * face)))
    cols = slice(cx - int(0.8 * face), cx + int(0.8 * face))
    win = cv2.createHanningWindow((cols.stop - cols.start, band.stop - band.start), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(still[band, cols], breathed[band, cols], win)
    assert -rise * face * 1.2 < dy < -rise * face * 0.6, dy
    assert abs(dx) < 0.5
    assert np.array_equal(breathed[:20, :40], still[:20, :40])  # the background


def test_brows_lift_and_the_gaze_moves_the_iris(shot: Shot) -> None:
    face = shot.rig.at(0).pose.face
    lifted = shot.landmarks_of(draw(shot.frame, shot.rig, 0, Motion(brows=0.04)))
    brows = list(mesh.RIGHT_BROW_UPPER + mesh.LEFT_BROW_UPPER)
    lift = float((shot.landmarks[brows, 1] - lifted[brows, 1]).mean())
    assert 0.3 * 0.04 * face < lift < 1.5 * 0.04 * face, lift
    # The iris (the eye's darkest pixels) moves toward the gaze.
    eye = _eye_mask(shot.landmarks, mesh.RIGHT_UPPER_LID, mesh.RIGHT_LOWER_LID)
    ys, xs = np.nonzero(eye)

    def iris_x(frame: Frame) -> float:
        luma = _luma(frame)[ys, xs].astype(np.float32)
        dark = luma < np.percentile(luma, 15)
        return float(xs[dark].mean())

    right = iris_x(draw(shot.frame, shot.rig, 0, Motion(gaze_x=1.0)))
    left = iris_x(draw(shot.frame, shot.rig, 0, Motion(gaze_x=-1.0)))
    assert right - left > 0.15 * shot.rig.at(0).eyes[0].width, (left, right)


def test_the_persons_mask_moves_as_the_frame_does(shot: Shot) -> None:
    """A moving background goes behind the person after the motion: the mask must be moved
    as the frame was, or the background would show through the moved head. It is moved at
    half size (its edge is a feather): within a few levels of moving it whole."""
    from avatarcast.avatar.segment import Segmenter
    from avatarcast.media.frames import mask_frame

    mask = mask_frame(Segmenter()(shot.rgb))
    moved = np.empty_like(mask)
    m = Motion(head_x=0.03, head_y=-0.02, roll=1.5, rise=0.02)
    draw(shot.frame, shot.rig, 0, m, mask=(mask, moved))
    whole = draw(mask, shot.rig, 0, m)  # the mask moved as a picture, whole
    diff = np.abs(moved.astype(int) - whole)
    edge = np.abs(_luma(whole).astype(int) - _luma(mask)) > 64  # where the move mattered
    assert edge.sum() > 500  # (it did move)
    assert diff.mean() < 0.5 and np.percentile(diff[:H][edge], 99) <= 24, (
        diff.mean(), np.percentile(diff[:H][edge], 99))
    assert np.abs(_luma(moved).astype(int)[edge] - _luma(mask)[edge]).mean() > 64
