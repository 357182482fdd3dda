"""Video frames as the encoder takes them: yuv420p, one (H*3/2, W) uint8 array per frame."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from ..infra.scratch import Scratch

Frame = npt.NDArray[np.uint8]


def frame_bytes(width: int, height: int) -> int:
    return width * height * 3 // 2


def blank(width: int, height: int) -> Frame:
    f = np.empty((height * 3 // 2, width), dtype=np.uint8)
    f[:height] = 16
    f[height:] = 128
    return f


def blend(a: Frame, b: Frame, weight_b: float) -> Frame:
    """Linear crossfade; mixing Y, U and V planes alike is exact for a linear blend."""
    if weight_b <= 0.0:
        return a
    if weight_b >= 1.0:
        return b
    w = np.float32(weight_b)
    mixed = a.astype(np.float32) * (1 - w) + b.astype(np.float32) * w
    return np.round(mixed).astype(np.uint8)


def chroma_planes(frame: Frame) -> tuple[Frame, Frame]:
    """The U and V planes of a yuv420p frame, as (H/2, W/2) views (writing them writes it)."""
    rows, width = frame.shape
    height = rows * 2 // 3
    quarter = (height // 2) * (width // 2)
    flat = frame.reshape(-1)[height * width:]
    return (flat[:quarter].reshape(height // 2, width // 2),
            flat[quarter:2 * quarter].reshape(height // 2, width // 2))


def remap_xy(src: npt.NDArray[np.uint8], xy: npt.NDArray[np.float32],
             dst: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.uint8]:
    """One plane resampled bilinearly through a two-channel map (x, y per output pixel, edges
    replicated), into `dst` (a view into a frame, written in place) when given."""
    # With a two-channel first map the second must be None (OpenCV's stubs do not say so,
    # and an empty array in its place is read as a map).
    got = cv2.remap(src, xy, None, cv2.INTER_LINEAR,  # type: ignore[call-overload]
                    dst=dst, borderMode=cv2.BORDER_REPLICATE)
    if dst is None:
        return np.asarray(got)
    if got is not dst and not np.shares_memory(got, dst):
        dst[...] = got  # OpenCV made its own array (it does for some views): copied in
    return dst


def mask_frame(mask: npt.NDArray[np.floating] | npt.NDArray[np.uint8]) -> Frame:
    """A mask over a picture (H x W: 0-1, or 0-255 in uint8) laid out as a yuv420p frame: the
    mask at full size where Y is, at half size where U and V are, 0-255. Each plane of a frame
    is weighed by the plane at its place, and what moves a frame (the motion's remap) moves it
    alike."""
    h, w = mask.shape
    y = (np.asarray(mask, np.uint8) if mask.dtype == np.uint8
         else np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8))
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = y
    half = np.asarray(cv2.resize(y, (w // 2, h // 2), interpolation=cv2.INTER_AREA), np.uint8)
    for plane in chroma_planes(out):
        plane[...] = half
    return out


def put_behind(front: Frame, mask: Frame, back: Frame, scratch: Scratch | None = None) -> None:
    """`back` put behind `front` (in place) where `mask` (mask_frame) is not 255: each sample
    front x m + back x (1 - m), rounded; exact where the mask is 0 or 255. `scratch` keeps the
    working frames from one call to the next (one thread's): in the daemon every frame-sized
    block is an mmap of its own (infra/malloc.py), and three new ones a tick cost more than
    the arithmetic."""
    scratch = scratch or Scratch()
    kept = scratch.get("kept", front.shape, np.uint8)
    inverse = scratch.get("inverse", front.shape, np.uint8)
    cv2.multiply(front, mask, dst=kept, scale=1 / 255)
    cv2.bitwise_not(mask, dst=inverse)
    cv2.multiply(back, inverse, dst=inverse, scale=1 / 255)
    cv2.add(kept, inverse, dst=front)
