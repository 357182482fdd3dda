"""The photoreal mouth: real mouths from the talking reference's atlas (avatar/atlas_build.py),
chosen per frame for the mouth track and pasted into the idle frames.

Per segment, a Viterbi pass picks one atlas variant per frame: close to the track's opening and
width, and like its neighbours (a change of variant costs, more so between variants that look
different). A change crossfades over one frame. The patch is moved from the canonical frame to
the idle frame's own face (the similarity of its stable points), its colour shifted to the idle
frame's around the mouth, and feathered in. Frames at rest are the idle frames themselves, and
the mouth fades in and out of them over a frame or two, so cuts cannot show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ...media.frames import Frame
from ..cache import ATLAS_FILE
from ..mouthframe import MouthFrame, halve, invert, lip_measures
from .mouthtrack import MouthTrack

Array = npt.NDArray[np.float32]
_SWITCH = 0.35  # cost of changing variant, against a quarter of the opening range off target
_LOOK_WEIGHT = 0.4  # extra cost of a change between variants that look apart
_CROSSFADE = 0.45  # the previous variant's share on the frame where the variant changes


@dataclass
class _Placed:
    """One idle frame's side of the paste: where the patch goes and the colour around it."""

    x0: int
    y0: int
    size: tuple[int, int]
    to_roi: npt.NDArray[np.float64]  # canonical -> region pixels
    ring: Array  # the idle frame's mean yuv where the patch is feathered in
    rest: tuple[float, float]  # the idle mouth's opening and width, in the atlas's measures


class MouthAtlas:
    """Owned by the animator's thread."""

    def __init__(self, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
        self.patches = np.asarray(arrays["patches"], np.uint8)
        self.open = np.asarray(arrays["open"], np.float32)
        self.width = np.asarray(arrays["width"], np.float32)
        self.ring = np.asarray(arrays["ring"], np.float32)
        self.mask = np.asarray(arrays["mask"], np.float32)
        look = np.asarray(arrays["look"], np.float32)
        d = np.linalg.norm(look[:, None] - look[None], axis=2)
        scale = float(np.median(d[d > 0])) if (d > 0).any() else 1.0
        self._trans = (_LOOK_WEIGHT * d / scale + _SWITCH * (d > 0)).astype(np.float32)
        np.fill_diagonal(self._trans, 0.0)
        self.open_lo, self.open_hi, self.width_lo, self.width_hi = (
            float(x) for x in arrays["scale"])
        self.frame = MouthFrame.from_arrays(np.asarray(arrays["template"], np.float32),
                                            np.asarray(arrays["frame"], np.float32))
        self._ring_mask = (self.mask > 0.05) & (self.mask < 0.5)
        self._placed: list[_Placed] = []

    @staticmethod
    def load(directory: Path | None) -> MouthAtlas | None:
        """The avatar's atlas, or None when it was prepared without a talking reference."""
        path = None if directory is None else directory / ATLAS_FILE
        if path is None or not path.is_file():
            return None
        with np.load(path) as data:
            return MouthAtlas({k: data[k] for k in data.files})

    def __len__(self) -> int:
        return len(self.patches)

    def attach(self, landmarks: Array, frames: list[Frame]) -> None:
        """Place the atlas on every idle frame of the cycle (landmarks in output pixels)."""
        self._placed = [self._place(lm, f) for lm, f in zip(landmarks, frames, strict=True)]

    def _place(self, lm: Array, frame: Frame) -> _Placed:
        to_canonical = self.frame.to_canonical(lm)
        back = invert(to_canonical)
        w, h = self.frame.size
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
        pts = corners @ back[:, :2].T + back[:, 2]
        rows, fw = frame.shape
        fh = rows * 2 // 3
        x0 = max(0, int(np.floor(pts[:, 0].min())) // 2 * 2)
        y0 = max(0, int(np.floor(pts[:, 1].min())) // 2 * 2)
        x1 = min(fw, (int(np.ceil(pts[:, 0].max())) + 1) // 2 * 2)
        y1 = min(fh, (int(np.ceil(pts[:, 1].max())) + 1) // 2 * 2)
        to_roi = back.copy()
        to_roi[:, 2] -= (x0, y0)
        ring = self.frame.crop(frame, to_canonical)[self._ring_mask].mean(0)
        rest_open, rest_width = lip_measures(lm, to_canonical)
        rest = (float(np.clip(rest_open, self.open_lo, self.open_hi)),
                float(np.clip(rest_width, self.width_lo, self.width_hi)))
        return _Placed(x0, y0, (max(x1 - x0, 2), max(y1 - y0, 2)), to_roi,
                       np.asarray(ring, np.float32), rest)

    def targets(self, track: MouthTrack, cycle_indices: Sequence[int]) -> tuple[Array, Array]:
        """The track's opening and width in the atlas's own measures, from the idle frame's
        mouth: the jaw opens it towards the widest the reference showed, pressed lips and a
        lip under the teeth close it towards the most closed, spread and rounding move the
        width towards the reference's widest and narrowest."""
        rest = np.array([self._placed[c].rest for c in cycle_indices], np.float32).reshape(-1, 2)
        r_open, r_width = rest[:, 0], rest[:, 1]
        jaw = np.asarray(track.jaw, np.float32)
        shut = np.maximum(np.asarray(track.press, np.float32),
                          0.6 * np.asarray(track.tuck, np.float32))
        opening = r_open + jaw * (self.open_hi - r_open) - shut * (r_open - self.open_lo)
        spread = np.asarray(track.spread, np.float32)
        width = np.where(spread >= 0, r_width + spread * (self.width_hi - r_width),
                         r_width + spread * (r_width - self.width_lo))
        return opening.astype(np.float32), width.astype(np.float32)

    def choose(self, track: MouthTrack, cycle_indices: Sequence[int]) -> npt.NDArray[np.int64]:
        """One variant per frame (Viterbi: on target, and like its neighbours)."""
        n = len(track)
        if n == 0:
            return np.zeros(0, np.int64)
        opening, width = self.targets(track, cycle_indices)
        o_scale = max(self.open_hi - self.open_lo, 1e-3) / 4
        w_scale = max(self.width_hi - self.width_lo, 0.02) / 4
        emit = (((self.open[None] - opening[:, None]) / o_scale) ** 2
                + 0.6 * ((self.width[None] - width[:, None]) / w_scale) ** 2)
        # Closed lips must be closed: a variant with the lips apart is far off an m/b/p.
        pressed = np.asarray(track.press, np.float32)[:, None] > 0.5
        near_shut = self.open_lo + 0.15 * (self.open_hi - self.open_lo)
        emit += np.where(pressed, 4.0 * (self.open[None] > near_shut), 0.0)
        cost = emit[0].copy()
        back = np.zeros((n, len(self)), np.int64)
        for k in range(1, n):
            total = cost[:, None] + self._trans
            back[k] = np.argmin(total, axis=0)
            cost = total[back[k], np.arange(len(self))] + emit[k]
        path = np.zeros(n, np.int64)
        path[-1] = int(np.argmin(cost))
        for k in range(n - 1, 0, -1):
            path[k - 1] = back[k, path[k]]
        return path

    def presence(self, track: MouthTrack) -> Array:
        """How much of the atlas mouth shows on each frame: none at rest (the idle frame's own
        mouth), all of it when the mouth moves, over a frame or two in between."""
        act = np.maximum.reduce([
            np.asarray(track.jaw, np.float32) / 0.12, np.abs(track.spread) / 0.35,
            np.asarray(track.press, np.float32), np.asarray(track.tuck, np.float32)])
        act = np.clip(act, 0.0, 1.0)
        if len(act) >= 3:
            padded = np.pad(act, 1, mode="edge")
            act = np.maximum(act, 0.5 * np.minimum(padded[:-2] + padded[2:], 1.0))
        return np.asarray(act, np.float32)

    def paste(self, frame: Frame, cycle: int, entry: int, previous: int | None,
              alpha: float) -> Frame:
        """The idle frame with variant `entry` pasted in (crossfaded from `previous`)."""
        if alpha <= 0.0:
            return frame
        p = self._placed[cycle]
        patch = self.patches[entry].astype(np.float32) + (p.ring - self.ring[entry])
        if previous is not None and previous != entry:
            old = self.patches[previous].astype(np.float32) + (p.ring - self.ring[previous])
            patch = (1 - _CROSSFADE) * patch + _CROSSFADE * old
        mask = self.mask * np.float32(alpha)
        out = frame.copy()
        rows, fw = frame.shape
        fh = rows * 2 // 3
        rw, rh = p.size
        y_patch = cv2.warpAffine(patch[..., 0], p.to_roi, (rw, rh), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        m = cv2.warpAffine(mask, p.to_roi, (rw, rh), flags=cv2.INTER_LINEAR)
        region = out[p.y0 : p.y0 + rh, p.x0 : p.x0 + rw]
        mixed = region + m * (y_patch - region)
        region[:] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        half = halve(p.to_roi)
        hw, hh = rw // 2, rh // 2
        m_half = cv2.warpAffine(mask, half, (hw, hh), flags=cv2.INTER_LINEAR)
        uv = cv2.warpAffine(np.ascontiguousarray(patch[..., 1:]), half, (hw, hh),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        quarter = (fh // 2) * (fw // 2)
        planes = out.reshape(-1)[fh * fw :]
        for k in (0, 1):
            plane = planes[k * quarter : (k + 1) * quarter].reshape(fh // 2, fw // 2)
            reg = plane[p.y0 // 2 : p.y0 // 2 + hh, p.x0 // 2 : p.x0 // 2 + hw]
            reg[:] = np.clip(reg + m_half * (uv[..., k] - reg) + 0.5, 0, 255).astype(np.uint8)
        return out
