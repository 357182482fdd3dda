"""The still-image mouth: the idle frame's own lips, teeth and jaw moved by a pose, on yuv420p.

Geometry lives in a face-aligned frame per cycle frame (lipgeometry.py): u along the mouth (in
mouth half-widths), v down the face in pixels from the line between the lips. Each column of
the mouth is drawn from top to bottom in layers, each mapped back to where it comes from:

* above the upper lip's inner edge: skin and upper lip, stretched down when the lips press;
* between the lips: the upper teeth, which stay with the upper jaw; below them the gap the jaw
  opens, the only part that is painted (a dark mouth cavity, with soft edges, the tongue's
  colour towards the bottom when the mouth is wide open); below the gap the lower teeth,
  moved down with the jaw;
* below the lower lip's inner edge: lower lip, chin and jaw, dropped with the jaw and fading
  out towards the neck and the ears; the lower lip rises to the upper teeth for f/v and both
  lips meet for m/b/p.

Rounded and wide shapes narrow or stretch the mouth sideways. Every displacement falls to zero
inside the region worked on, so there is no seam at its edge; a pose at rest returns the frame
itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ...infra.scratch import Scratch, thread_scratch
from ...media.frames import Frame, chroma_planes, remap_xy
from .lipgeometry import LipGeometry, smoothstep
from .visemes import Pose

Array = npt.NDArray[np.float32]
REST = Pose(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class WarpTuning:
    jaw_drop: float = 0.5  # gap between the teeth at full opening, in mouth half-widths
    width_gain: float = 0.12  # how far the corners move out at full spread (of half-width)
    round_gain: float = 0.3  # how far they move in when fully rounded
    round_height: float = 0.25  # rounded mouths open this much taller for the same jaw
    cavity_y: float = 26.0  # luma at the back of the mouth
    tongue_y: float = 70.0  # luma of the tongue, seen when the mouth is open wide
    teeth_y: float = 196.0  # luma of painted teeth, for a portrait that shows none


@dataclass
class _Layers:
    map_x: Array
    map_y: Array
    cavity: Array  # 0..1: how much of the pixel is the painted gap
    depth: Array  # 0 at the top of the gap .. 1 at its bottom
    teeth: Array  # 0..1: painted upper teeth (portraits that show none)
    shade: Array
    seam: Array  # 0..1: the shadow where pressed lips meet
    lips: tuple[float, float]  # the v the lips' inner edges span (where the map jumps)


@dataclass
class _Static:
    """What does not depend on the pose, per pixel of one cycle frame's region."""

    u: Array
    v: Array
    mid: Array  # the line between the lips, and its slope along u
    slope: Array
    c: Array  # inner upper, inner lower, outer upper, outer lower lip; teeth split
    e: Array
    b: Array
    f: Array
    s: Array
    near: Array  # how much the mouth's sideways move reaches here
    side: Array  # how much of the jaw's drop reaches this column
    lipline: Array
    row_vmin: Array  # the range of v along each row of the region
    row_vmax: Array

    def rows(self, r0: int, r1: int) -> _Static:
        """The same, for rows r0..r1 only (views)."""
        return _Static(*(getattr(self, f.name)[r0:r1] for f in fields(self)))


def _static(g: LipGeometry, step: int) -> _Static:
    cached = g.static.get(step)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    x0, y0, x1, y1 = g.roi
    x, y = _grid(x0, y0, x1, y1, step)
    m0, m1 = float(g.m[0]), float(g.m[1])
    ex0, ex1, ey0, ey1 = (float(k) for k in (*g.ex, *g.ey))
    dx, dy = x - m0, y - m1
    u = ((dx * ex0 + dy * ex1) / g.a).astype(np.float32)
    mid = np.interp(u, g.lip_u, g.lip_v).astype(np.float32)
    eps = 0.01
    slope = ((np.interp(u + eps, g.lip_u, g.lip_v) - mid) / eps).astype(np.float32)
    v = (dx * ey0 + dy * ey1 - mid).astype(np.float32)
    above = 1.0 - smoothstep((-v - 0.2 * g.a) / (0.6 * g.a))
    below = 1.0 - smoothstep((v - 0.3 * g.a) / g.a)
    # Only the mouth moves sideways: nothing beyond 1.7 half-widths (the cheeks stay).
    near = np.where(v < 0, above, below) * (1.0 - smoothstep((np.abs(u) - 0.8) / 0.9))
    out = _Static(
        u, v, mid, slope, g.at(g.inner_upper, u), g.at(g.inner_lower, u),
        g.at(g.outer_upper, u), g.at(g.outer_lower, u), g.at(g.split, u),
        near.astype(np.float32), (1.0 - smoothstep((np.abs(u) - 1.3) / 1.5)),
        np.clip(1.0 - (np.abs(u) / 1.05) ** 4, 0.0, 1.0).astype(np.float32),
        v.min(axis=1), v.max(axis=1),
    )
    if g.keep_static:
        g.static[step] = out
    return out


def _layers(g: LipGeometry, st: _Static, px: float, pose: Pose, t: WarpTuning) -> _Layers:
    """The layers over `st`'s pixels (a strip of the region's rows, or all of them); soft
    edges are `px` luma pixels wide."""
    u, v, c, e, b, f, s = st.u, st.v, st.c, st.e, st.b, st.f, st.s

    spread = pose.spread
    # Where the opening ends along the mouth: short of the corners, which stay closed, and
    # shorter still when the lips round.
    cw = 0.88 + 0.25 * min(spread, 0.0) + 0.05 * max(spread, 0.0)
    wide = np.clip(1.0 - (u * (1.0 / cw)) ** 2, 0.0, 1.0) ** 1.1
    jaw_px = pose.jaw * t.jaw_drop * g.a * (1.0 + t.round_height * max(0.0, -spread))
    d = jaw_px * wide  # how far the lower teeth and lip drop in this column
    chin_drop = jaw_px * st.side

    meet = c + 0.5 * (e - c)
    c2 = c + pose.press * (meet - c)
    tucked = s - 0.35 * (s - c)  # the lower lip up over the upper teeth's edge
    e2 = np.maximum(e + d + pose.press * (meet - e) + pose.tuck * (tucked - e), c2)
    # Lips move whole: pressing or tucking slides them over the teeth, keeping their
    # thickness; the skin above and the chin below stretch to follow.
    b2 = b + (c2 - c)
    f2 = f + (e2 - e)
    reach = np.maximum(3.0 * np.abs(c2 - c), g.reach)

    src = v.copy()
    upper = v < c2
    lower = v >= e2
    # Upper chain: [b - reach, b2, c2] <- [b - reach, b, c], the lip's inner edge taken from a
    # little inside the lip when the lips close (its very edge is blurred into the teeth).
    if pose.press > 0:
        c_src = c - (0.15 * pose.press) * (c - b)
        top = b - reach
        src[upper] = _chain(v[upper], [top[upper], b2[upper], c2[upper]],
                            [top[upper], b[upper], c_src[upper]])
    # Lower chain: [e2, f2, chin + drop, end] <- [e, f, chin, end]; below `end` nothing moves.
    chin = np.maximum(g.chin, f + 1.0)[lower]
    end = chin + chin_drop[lower] + g.neck
    e_src = e + (0.15 * min(1.0, pose.press + pose.tuck)) * (f - e)
    src[lower] = _chain(v[lower], [e2[lower], f2[lower], chin + chin_drop[lower], end],
                        [e_src[lower], f[lower], chin, end])
    # Between the lips: upper teeth stay, lower teeth drop, the gap between them is painted.
    # Only the rows that hold the lips are looked at.
    rows = np.flatnonzero((st.row_vmax >= float(c2.min()) - 2)
                          & (st.row_vmin <= float(e2.max()) + 2))
    cavity = np.zeros_like(v)
    depth = np.zeros_like(v)
    teeth = np.zeros_like(v)
    seam = np.zeros_like(v)
    shade = np.ones_like(v)
    if len(rows):
        band = slice(int(rows[0]), int(rows[-1]) + 1)
        bv, bu, bs, bd = v[band], u[band], s[band], d[band]
        bc2, be2 = c2[band], e2[band]
        inside = (bv >= bc2) & (bv < be2)
        gap_top = np.maximum(bc2, bs)
        gap_bottom = bs + bd
        lower_teeth = inside & (bv >= gap_bottom)
        src[band][lower_teeth] -= bd[lower_teeth]
        height = np.maximum(gap_bottom - gap_top, 1e-3)
        edge = np.minimum(np.minimum(bv - gap_top, gap_bottom - bv),
                          np.minimum(bv - bc2, be2 - bv))
        # Soft against teeth and lips alike; a gap of a pixel or two is a shadow between the
        # teeth, not a black line.
        cav = np.clip(edge * (1.0 / px) + 0.5, 0.0, 1.0) * smoothstep(height / (0.12 * g.a))
        cav[~inside | (gap_bottom <= gap_top)] = 0.0
        cavity[band] = cav
        depth[band] = np.clip((bv - gap_top) / height, 0.0, 1.0)
        if not g.shows_teeth:  # a closed-mouth portrait: suggest the upper teeth in the gap
            size = np.minimum(0.3 * height, 0.12 * g.a)
            tt = np.clip((size - (bv - gap_top)) / (1.5 * px), 0.0, 1.0)
            tt *= np.clip((0.7 * cw - np.abs(bu)) * g.a / (1.5 * px), 0.0, 1.0)
            teeth[band] = tt * cav
        shade[band] = 0.55 + 0.45 * wide[band]
        # Lips that meet show the line between them, a soft shadow, corner to corner.
        if pose.press > 0:
            touching = pose.press * np.clip(1.0 - (be2 - bc2) / (0.1 * g.a), 0.0, 1.0)
            sigma = max(0.8 * px, 0.04 * g.a)
            seam[band] = touching * np.exp(-(((bv - bc2) / sigma) ** 2)) * st.lipline[band]

    # Sideways: corners in for rounded shapes, out for wide ones, fading away from the mouth.
    gain = t.width_gain if spread > 0 else t.round_gain
    shift = (gain * spread * pose_strength(pose) - 0.08 * pose.jaw) * st.near
    du_lip = -u * shift  # us - u
    du = (u + du_lip) * g.a
    dv = src + st.mid + st.slope * du_lip
    m0, m1 = float(g.m[0]), float(g.m[1])
    ex0, ex1, ey0, ey1 = (float(k) for k in (*g.ex, *g.ey))
    map_x = (m0 + du * ex0 + dv * ey0).astype(np.float32)
    map_y = (m1 + du * ex1 + dv * ey1).astype(np.float32)
    return _Layers(map_x, map_y, cavity, depth, teeth, shade, seam,
                   (float(c2.min()), float(e2.max())))


def pose_strength(pose: Pose) -> float:
    """How much of the spread shows: none when the lips are shut, all when open or moving."""
    return float(min(1.0, 0.35 + pose.jaw * 2.0))


def _chain(v: Array, out_knots: list[npt.NDArray[np.floating[Any]]],
           src_knots: list[npt.NDArray[np.floating[Any]]]) -> Array:
    """Piecewise-linear map from output v to source v through per-pixel knots (increasing);
    identity outside them."""
    res = v.copy()
    for k in range(len(out_knots) - 1):
        o0, o1 = out_knots[k], out_knots[k + 1]
        s0, s1 = src_knots[k], src_knots[k + 1]
        sel = (v >= o0) & (v < o1)
        span = np.maximum(o1 - o0, 1e-4)
        res[sel] = (s0 + (v - o0) * (s1 - s0) / span)[sel]
    return res


def _grid(x0: int, y0: int, x1: int, y1: int, step: int) -> tuple[Array, Array]:
    # Pixel centres in luma coordinates; a chroma sample covers 2x2 luma pixels.
    off = 0.5 * (step - 1)
    xs = np.arange(x0, x1, step, dtype=np.float32) + off
    ys = np.arange(y0, y1, step, dtype=np.float32) + off
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy


def is_rest(pose: Pose) -> bool:
    return pose.jaw < 1e-3 and pose.press < 1e-3 and pose.tuck < 1e-3 and abs(pose.spread) < 1e-3


def sampling_step(g: LipGeometry) -> int:
    """Every how many pixels the mouth's layers are worked out: every pixel for a small mouth,
    every second for one of 48 px or wider (a face framed large, upscaled from its source),
    upsampled after, but for the rows between the lips, where the map jumps
    (`_exact_between_the_lips`). Elsewhere the layers are smooth: at a step of 1/24 of the
    mouth's half-width or finer the picture is the same to the eye for a third of the
    work."""
    return 1 if g.a < 24 else 2


def warp(frame: Frame, g: LipGeometry, pose: Pose, t: WarpTuning) -> Frame:
    """The frame with its mouth in `pose`. The frame itself, unchanged and shared, at rest.
    The full-size temporaries live in the calling thread's scratch (infra/scratch.py)."""
    if is_rest(pose):
        return frame
    x0, y0, x1, y1 = g.roi
    if x1 - x0 < 4 or y1 - y0 < 4:
        return frame
    out = frame.copy()
    scratch = thread_scratch()
    step = sampling_step(g)
    luma_size, chroma_size = (x1 - x0, y1 - y0), ((x1 - x0) // 2, (y1 - y0) // 2)
    if step == 1:
        (maps, blend), _ = _in_strips(g, 1, 1.0, scratch, "luma",
                                      lambda lay: _luma_layers(lay, pose, t), pose, t)
        (chroma_maps, chroma_blend), _ = _in_strips(g, 2, 2.0, scratch, "chroma",
                                                    lambda lay: _chroma_layers(lay, g), pose, t)
    else:
        (maps, blend, chroma_maps, chroma_blend), lips = _in_strips(
            g, step, 1.0, scratch, "both",
            lambda lay: (*_luma_layers(lay, pose, t), *_chroma_layers(lay, g)), pose, t)
        blend = _upsampled(blend, step, luma_size, scratch, "luma blend")
        maps = _upsampled(maps, step, luma_size, scratch, "luma maps", extend=True)
        _exact_between_the_lips(g, lips, maps, blend, pose, t)
    _draw(frame[:frame.shape[0] * 2 // 3], out, (x0, y0), maps, blend[..., 0], blend[..., 1],
          scratch.get("luma draw", maps.shape[:2]))
    half = max(step // 2, 1)
    chroma_maps = _upsampled(chroma_maps, half, chroma_size, scratch, "chroma maps",
                             extend=True)
    chroma_blend = _upsampled(chroma_blend, half, chroma_size, scratch, "chroma blend")
    for k, (plane, dst) in enumerate(zip(chroma_planes(frame), chroma_planes(out),
                                         strict=True)):
        _draw(plane, dst, (x0 // 2, y0 // 2), chroma_maps, chroma_blend[..., 0],
              chroma_blend[..., k + 1], scratch.get("chroma draw", chroma_maps.shape[:2]))
    return out


_STRIP = 20_000  # samples at once: every temporary, three layers stacked too, under 256 KiB


def _exact_between_the_lips(g: LipGeometry, lips: tuple[float, float], maps: Array,
                            blend: Array, pose: Pose, t: WarpTuning) -> None:
    """Redo at every pixel the luma layers (`maps`, `blend`: full size, from samples every
    second pixel) in the rows between the lips' inner edges: the map jumps there (pressed
    lips meet, the lower teeth drop), and a map upsampled across a jump takes a line of
    pixels from between the lips' old edges (the teeth) instead."""
    st = _static(g, 1)
    lo, hi = lips
    rows = np.flatnonzero((st.row_vmax >= lo - 3.0) & (st.row_vmin <= hi + 3.0))
    if not len(rows):
        return
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    strip = max(1, _STRIP // st.u.shape[1])
    for a in range(r0, r1, strip):
        b = min(a + strip, r1)
        maps[a:b], blend[a:b] = _luma_layers(_layers(g, st.rows(a, b), 1.0, pose, t), pose, t)


def _in_strips(g: LipGeometry, step: int, px: float, scratch: Scratch, name: str,
               stacks: Callable[[_Layers], tuple[Array, ...]], pose: Pose,
               t: WarpTuning) -> tuple[list[Array], tuple[float, float]]:
    """`stacks` of the layers at `step`, worked out a strip of rows at a time (so that the
    many temporaries stay small: infra/scratch.py says why) and gathered in the scratch.
    Edges are soft over `px` luma pixels, a pixel of what the layers are drawn on: for luma
    one, even when sampled every second pixel (upsampling softens them that much again); for
    chroma alone two. Also the v the lips' inner edges span."""
    st = _static(g, step)
    ny, nx = st.u.shape
    rows = max(1, _STRIP // nx)
    gathered: list[Array] = []
    lo, hi = np.inf, -np.inf
    for r0 in range(0, ny, rows):
        lay = _layers(g, st.rows(r0, r0 + rows), px, pose, t)
        lo, hi = min(lo, lay.lips[0]), max(hi, lay.lips[1])
        parts = stacks(lay)
        if not gathered:
            gathered = [scratch.get(f"{name} {i}", (ny, nx, p.shape[2]))
                        for i, p in enumerate(parts)]
        for whole, part in zip(gathered, parts, strict=True):
            whole[r0:r0 + len(part)] = part
    return gathered, (lo, hi)


def _upsampled(layer: Array, factor: int, size: tuple[int, int], scratch: Scratch,
               name: str, extend: bool = False) -> Array:
    """`layer` (samples every `factor` pixels of the target grid, centred on its blocks)
    bilinearly at every pixel, `size` (w, h). An integer factor keeps the grids aligned:
    cv2.resize places target pixel i at source (i + 0.5) / factor - 0.5. A map is first
    `extend`ed by one sample on every side, linearly: the pixels at the region's edge lie
    outside the outermost samples, and a map held there would shift them."""
    if factor == 1:
        return layer
    h, w, n = layer.shape
    if not extend:
        full = cv2.resize(layer, (w * factor, h * factor),
                          dst=scratch.get(name, (h * factor, w * factor, n)))
        return np.asarray(full[:size[1], :size[0]])
    wide = scratch.get(name + " extended", (h + 2, w + 2, n))
    wide[1:-1, 1:-1] = layer
    wide[0, 1:-1] = 2 * layer[0] - layer[min(1, h - 1)]
    wide[-1, 1:-1] = 2 * layer[-1] - layer[max(h - 2, 0)]
    wide[:, 0] = 2 * wide[:, 1] - wide[:, min(2, w)]
    wide[:, -1] = 2 * wide[:, -2] - wide[:, max(w - 1, 1)]
    full = cv2.resize(wide, ((w + 2) * factor, (h + 2) * factor),
                      dst=scratch.get(name, ((h + 2) * factor, (w + 2) * factor, n)))
    return np.asarray(full[factor:factor + size[1], factor:factor + size[0]])


def _luma_layers(lay: _Layers, pose: Pose, t: WarpTuning) -> tuple[Array, Array]:
    """The luma's map (x, y) and blend: what the remapped picture is multiplied by (less
    where the gap is painted, and darker where pressed lips meet), and the paint added."""
    open_wide = min(1.0, pose.jaw / 0.6)
    gap_y = t.cavity_y + (t.tongue_y - t.cavity_y) * open_wide * lay.depth**2
    paint = gap_y * lay.shade
    paint = paint + (t.teeth_y * (0.8 + 0.2 * lay.shade) - paint) * lay.teeth
    keep = (1.0 - lay.cavity) * (1.0 - 0.5 * lay.seam)
    return (np.dstack([lay.map_x, lay.map_y]),
            np.dstack([keep, paint * lay.cavity]).astype(np.float32))


def _chroma_layers(lay: _Layers, g: LipGeometry) -> tuple[Array, Array]:
    """The chroma planes' map (in their own pixels) and blend (what the remapped picture is
    multiplied by, then the paint added, for each of the two planes)."""
    paints = []
    for lip in g.lip_chroma:
        cavity_c = 128.0 + (lip - 128.0) * (0.55 + 0.35 * lay.depth)
        paints.append((cavity_c + (128.0 - cavity_c) * lay.teeth) * lay.cavity)
    return (np.dstack([(lay.map_x - 0.5) / 2, (lay.map_y - 0.5) / 2]),
            np.dstack([1.0 - lay.cavity, *paints]).astype(np.float32))


def _draw(src: npt.NDArray[np.uint8], dst: npt.NDArray[np.uint8], at: tuple[int, int],
          maps: Array, keep: Array, add: Array, acc: Array) -> None:
    """dst's region at `at` = src remapped through `maps`, times `keep`, plus `add`,
    rounded; `acc` (float32, the region's size) is worked in."""
    h, w = maps.shape[:2]
    x0, y0 = at
    picture = remap_xy(src, maps)
    np.multiply(picture, keep, out=acc)
    acc += add
    acc += 0.5  # then truncated: rounded (nothing here is negative)
    np.copyto(dst[y0:y0 + h, x0:x0 + w], acc, casting="unsafe")
