"""The wire format between the `remote` animator and a face server (`avatarcast serve-face`).

Request: `POST {url}/v1/render`, `Content-Type: application/json`:

    {"avatar": {"id": "anna", "source_sha256": "...",    the same prepared avatar on both sides,
                "framing": "face 14,8,422,236"},         framed alike (cache.framed_as)
     "width": 1280, "height": 720, "fps": 30,             the output the frames are for
     "cycle": [12, 13, ...],                              idle-cycle index of every frame
     "audio_16k": "<base64 of 16-bit mono PCM at 16 kHz, exactly len(cycle) frames of it>",
     "mouth": {"jaw": [...], "spread": [...], "press": [...], "tuck": [...],
               "viseme": [...]}}                          the mouth track, one value per frame

Answer: `200`, `Content-Type: application/x-avatarcast-patches`, streamed as frames are
rendered: for every frame in order, a 12-byte header (little-endian `uint32 index`, then
`uint16 x, y, w, h`: the rectangle that differs from the idle frame, all even) followed by that
rectangle of the yuv420p frame: w*h bytes of Y, then (w/2)*(h/2) of U and of V. A frame
identical to its idle frame is a header with w = h = 0. The answer is not content-encoded
(the receiver asks for identity and refuses anything else: a compressed stream could unpack
to any size). Errors are JSON
`{"error": {"message": ...}}`: 400 a bad request, 404 an avatar the server has not prepared,
409 a different avatar under that id (its source or its framing differs; a request without
a framing is not compared on it).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from ...media.audio import Pcm
from ...media.frames import Frame
from .mouthtrack import MouthTrack

CONTENT_TYPE = "application/x-avatarcast-patches"
HEADER = struct.Struct("<IHHHH")
_TRACK = ("jaw", "spread", "press", "tuck")


def request_body(avatar_id: str, source_sha256: str, width: int, height: int, fps: int,
                 cycle: list[int], audio_16k: Pcm, mouth: MouthTrack,
                 framing: str | None = None) -> dict[str, Any]:
    who = {"id": avatar_id, "source_sha256": source_sha256}
    if framing is not None:
        who["framing"] = framing
    return {
        "avatar": who,
        "width": width, "height": height, "fps": fps, "cycle": cycle,
        "audio_16k": base64.b64encode(np.asarray(audio_16k, "<i2").tobytes()).decode(),
        "mouth": {**{k: np.round(getattr(mouth, k), 4).tolist() for k in _TRACK},
                  "viseme": mouth.viseme.tolist()},
    }


def parse_body(body: dict[str, Any]) -> tuple[list[int], Pcm, MouthTrack]:
    """(cycle, audio, mouth track) of a request; ValueError says what is wrong."""
    cycle = body.get("cycle")
    if not isinstance(cycle, list) or not all(isinstance(c, int) and c >= 0 for c in cycle):
        raise ValueError("cycle must be a list of frame indices")
    try:
        audio = np.frombuffer(base64.b64decode(str(body.get("audio_16k", ""))), "<i2")
    except ValueError:
        raise ValueError("audio_16k is not base64") from None
    m = body.get("mouth")
    if not isinstance(m, dict):
        raise ValueError("mouth must be an object")
    try:
        arrays = [np.asarray(m[k], np.float32) for k in _TRACK]
        viseme = np.asarray(m["viseme"], np.int8)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"mouth needs {', '.join(_TRACK)} and viseme, as numbers") from None
    if any(a.shape != (len(cycle),) for a in arrays) or viseme.shape != (len(cycle),):
        raise ValueError("the mouth track must have one value per frame of cycle")
    jaw, spread, press, tuck = arrays
    return cycle, audio.astype(np.int16), MouthTrack(jaw, spread, press, tuck, viseme)


def encode_patch(index: int, frame: Frame, idle: Frame) -> bytes:
    """The rectangle of `frame` that differs from `idle`, with its header."""
    rows, w = frame.shape
    h = rows * 2 // 3
    luma = frame[:h] != idle[:h]
    (fu, fv), (iu, iv) = planes(frame), planes(idle)
    chroma = (fu != iu) | (fv != iv)
    rows_changed = luma.any(1) | np.repeat(chroma.any(1), 2)
    cols_changed = luma.any(0) | np.repeat(chroma.any(0), 2)
    ys, xs = np.flatnonzero(rows_changed), np.flatnonzero(cols_changed)
    if not len(ys):
        return HEADER.pack(index, 0, 0, 0, 0)
    y0, x0 = int(ys[0]) // 2 * 2, int(xs[0]) // 2 * 2
    y1, x1 = min(h, (int(ys[-1]) + 2) // 2 * 2), min(w, (int(xs[-1]) + 2) // 2 * 2)
    u, v = planes(frame)
    parts = [frame[y0:y1, x0:x1], u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
             v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]]
    return HEADER.pack(index, x0, y0, x1 - x0, y1 - y0) + b"".join(p.tobytes() for p in parts)


def planes(frame: Frame) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    rows, w = frame.shape
    h = rows * 2 // 3
    quarter = (h // 2) * (w // 2)
    flat = frame.reshape(-1)[h * w :]
    return (flat[:quarter].reshape(h // 2, w // 2), flat[quarter:].reshape(h // 2, w // 2))


def check_patch(x: int, y: int, w: int, h: int, width: int, height: int) -> None:
    """ValueError unless the rectangle of a header fits a width x height frame, all even: the
    receiver checks it before it reads the w*h*3/2 bytes the header announces."""
    if x + w > width or y + h > height or x % 2 or y % 2 or w % 2 or h % 2:
        raise ValueError(f"patch {w}x{h} at {x},{y} does not fit a {width}x{height} frame")


def apply_patch(idle: Frame, x: int, y: int, w: int, h: int, data: bytes) -> Frame:
    """The idle frame with a received rectangle pasted in (a new array)."""
    if w == 0 or h == 0:
        return idle
    if len(data) != w * h * 3 // 2:
        raise ValueError(f"a {w}x{h} patch needs {w * h * 3 // 2} bytes, got {len(data)}")
    out = idle.copy()
    rows, width = out.shape
    check_patch(x, y, w, h, width, rows * 2 // 3)
    buf = np.frombuffer(data, np.uint8)
    out[y : y + h, x : x + w] = buf[: w * h].reshape(h, w)
    u, v = planes(out)
    q = (w // 2) * (h // 2)
    u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = buf[w * h : w * h + q].reshape(h // 2, w // 2)
    v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = buf[w * h + q :].reshape(h // 2, w // 2)
    return out
