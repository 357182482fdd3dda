"""A moving background put behind the person on a yuv420p frame (media/frames.py): the
person's mask laid out as a frame, and the blend by it, exact where the mask is whole."""

from __future__ import annotations

import numpy as np

from avatarcast.media.frames import chroma_planes, mask_frame, put_behind

W, H = 64, 36


def test_a_mask_is_laid_out_as_a_frame() -> None:
    m = np.zeros((H, W), np.float32)
    m[:, W // 2:] = 1.0
    f = mask_frame(m)
    assert f.shape == (H * 3 // 2, W) and f.dtype == np.uint8
    assert (f[:H, : W // 2] == 0).all() and (f[:H, W // 2:] == 255).all()
    for plane in chroma_planes(f):
        assert (plane[:, : W // 4] == 0).all() and (plane[:, W // 4:] == 255).all()


def test_the_back_shows_where_the_person_is_not() -> None:
    rng = np.random.default_rng(1)
    front = rng.integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)
    back = rng.integers(0, 256, (H * 3 // 2, W), dtype=np.uint8)
    m = np.zeros((H, W), np.float32)
    m[:, 40:] = 1.0
    m[:, 20:40] = 0.5
    mask = mask_frame(m)
    out = front.copy()
    put_behind(out, mask, back)
    assert np.array_equal(out[:H, 40:], front[:H, 40:])  # the person, as they were
    assert np.array_equal(out[:H, :20], back[:H, :20])  # the back, wholly
    half = (front[:H, 20:40].astype(int) + back[:H, 20:40]) / 2
    assert np.abs(out[:H, 20:40] - half).max() <= 1.5  # a soft edge between
    for o, f, b in zip(chroma_planes(out), chroma_planes(front), chroma_planes(back),
                       strict=True):
        assert np.array_equal(o[:, :10], b[:, :10]) and np.array_equal(o[:, 20:], f[:, 20:])
