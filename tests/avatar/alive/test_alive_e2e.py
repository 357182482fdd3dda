"""The face alive in the received stream: a real daemon on its default avatar and settings,
the motion turned on (`auto`, as for a still; blinks made more frequent to see several in a
short run), airs to nginx-rtmp, a real client
records it, and the project's landmarker reads every received frame.

In idle, the frames are checked against the motion track the daemon's settings make (the
track is deterministic for its seed and the stream's frame numbers): the eyes are shut on the
frames where the track closes them and open elsewhere, and the head's received motion follows
the track's. In speech, the mouth still closes on m/b/p and opens on open vowels, and the head
does not jump where speech cuts in and out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from avatarcast.avatar import mesh
from avatarcast.avatar.alive.driver import Activity, MotionDriver
from avatarcast.avatar.face.mouthtrack import LEAD_S
from avatarcast.avatar.track import FaceTracker
from avatarcast.settings import AliveSettings
from harness.daemon import QueueNames
from harness.services import NginxRtmp
from harness.speak import iter_frames, speak_and_record

W, H, FPS = 960, 540, 30
STABLE = [33, 133, 362, 263, 168, 6]  # eye corners and the nose's bridge
TEXT = "Is that so? Mom made me a map, and a bamboo boat."


def _upper_opening_p10(rgb: npt.NDArray[np.uint8], lm: npt.NDArray[np.float32]) -> float:
    """The 10th percentile of luma over the upper 60 % of both eyes' openings: the iris when
    open, the lid's skin when shut."""
    import cv2

    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    values = []
    for upper, lower in ((mesh.RIGHT_UPPER_LID, mesh.RIGHT_LOWER_LID),
                         (mesh.LEFT_UPPER_LID, mesh.LEFT_LOWER_LID)):
        poly = np.concatenate([lm[list(upper), :2], lm[list(lower)[::-1], :2]])
        mask = np.zeros(luma.shape, np.uint8)
        cv2.fillPoly(mask, [poly.astype(np.int32)], 1)
        rows = np.flatnonzero(mask.any(axis=1))
        mask[rows[0] + int(0.6 * len(rows)):] = 0
        values.append(luma[mask.astype(bool)])
    return float(np.percentile(np.concatenate(values), 10))


def test_the_received_face_blinks_sways_and_keeps_its_lip_sync(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    transcript = tmp_path / "aired.jsonl"
    settings = AliveSettings(blinks_per_minute=40)
    _, st, recording = speak_and_record(
        tmp_path, queues, rtmp_server,
        # alive.enabled at its default (auto: the portrait is a still), more blinks to count.
        {"AVATARCAST_ALIVE__BLINKS_PER_MINUTE": "40",
         "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript)},
        [TEXT], animator="lite", width=W, height=H, fps=FPS, idle_s=6.0)
    assert st["frames_dropped"] == 0
    (entry,) = st["recent"]
    first, last = entry["stream_first"], entry["stream_last"]
    tracker = FaceTracker()
    openings, marks = [], []
    for rgb in iter_frames(recording, W, H, "rgb24", 3):
        lm = tracker.find(np.ascontiguousarray(rgb))
        marks.append(lm if lm is not None else np.full((468, 3), np.nan, np.float32))
        openings.append(_upper_opening_p10(rgb, lm) if lm is not None else np.nan)
    lms = np.stack(marks)
    eyes = np.array(openings)
    found = ~np.isnan(eyes)
    # The landmarker misses a face now and then (the face is small at this size).
    assert found.mean() > 0.97, np.flatnonzero(~found)
    face = float(np.nanmedian(np.linalg.norm(lms[:, 152, :2] - lms[:, 9, :2], axis=1)))

    # The track the daemon ran, for the idle frames before the text was published (after
    # 6 s of idle): from then on the stream is preparing it (thinking: a glance may start, and
    # the blinks' random draws with it), for however long a busy machine takes.
    driver = MotionDriver(settings, FPS)
    idle = [n for n in range(10, min(first - 20, 6 * FPS)) if found[n]]
    track = [driver.at(n, Activity.IDLE) for n in range(first)]
    lids = np.array([m.lids for m in track])
    shut = [n for n in idle if lids[n] >= 0.95]
    opened = [n for n in idle if lids[max(0, n - 3):n + 4].max() == 0]
    assert len(shut) >= 2, "the track blinks at least twice in this idle stretch"
    threshold = float(np.median(eyes[opened])) + 25
    assert all(eyes[n] > threshold for n in shut), (eyes[shut], threshold)
    assert np.mean(eyes[opened] > threshold) < 0.02

    # The head's received motion follows the track's: the stable points where the track's
    # turn about the neck, shift and breath put them (the turn moves the eyes sideways more
    # than the shift does), and the eye line's angle.
    pos = lms[:, STABLE, :2].mean(axis=1)
    rest = np.nanmedian(pos[idle], axis=0)
    chin = np.nanmedian(lms[idle, 152, :2], axis=0)
    pivot = np.array([np.nanmedian(lms[idle][:, list(mesh.FACE_OVAL), 0]), chin[1] - 0.1 * face])
    roll = np.radians([m.roll for m in track])
    arm = rest - pivot
    expected = np.stack([
        pivot[0] + np.cos(roll) * arm[0] - np.sin(roll) * arm[1] + face * np.array(
            [m.head_x for m in track]),
        pivot[1] + np.sin(roll) * arm[0] + np.cos(roll) * arm[1] + face * np.array(
            [m.head_y - 0.6 * m.rise for m in track])], axis=1)
    eye_line = lms[:, 263, :2] - lms[:, 33, :2]
    angle = np.degrees(np.arctan2(eye_line[:, 1], eye_line[:, 0]))
    ok = [n for n in idle if lids[max(0, n - 3):n + 4].max() == 0]  # blinks shake the points
    r_x = np.corrcoef(pos[ok, 0], expected[ok, 0])[0, 1]
    r_roll = np.corrcoef(angle[ok], np.degrees(roll[ok]))[0, 1]
    print(f"\nreceived head against the track's: x r {r_x:.2f}, roll r {r_roll:.2f}, SD "
          f"ratio {np.std(pos[ok, 0]) / np.std(expected[ok, 0]):.2f}; eyes shut on "
          f"{len(shut)} frames")
    assert np.corrcoef(pos[ok, 0], expected[ok, 0])[0, 1] > 0.8
    assert np.corrcoef(angle[ok], np.degrees(roll[ok]))[0, 1] > 0.7
    assert 0.6 < np.std(pos[ok, 0]) / np.std(expected[ok, 0]) < 1.5

    # Speech: m/b/p shut the lips, open vowels open them, with the head moving.
    aired = json.loads(transcript.read_text().splitlines()[0])
    gap = np.linalg.norm(lms[:, 13, :2] - lms[:, 14, :2], axis=1) / face

    def middles(visemes: tuple[str, ...]) -> list[int]:
        return [round(((a + b) / 2 - LEAD_S) * FPS) for a, b, v in aired["phones"]
                if v in visemes]

    closed = gap[[k for k in middles(("PP",)) if found[k]]]
    wide = gap[[k for k in middles(("aa",)) if found[k]]]
    assert len(closed) >= 4 and len(wide) >= 4
    assert np.median(closed) < 0.4 * np.median(wide), (closed, wide)

    # No jump where speech cuts in and out: the stable points step no more there than the
    # largest step of the idle stretch, plus a pixel.
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    idle_max = float(np.nanmax(steps[ok[:-1]]))
    for cut in (first, last + 1):
        assert found[cut - 1] and found[cut], "the landmarker lost the face at a cut"
        assert steps[cut - 1] <= idle_max + 1.0, (cut, steps[cut - 3:cut + 2], idle_max)
