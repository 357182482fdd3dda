"""Avatar preparation against the real face models: image and video sources, frames without
a face, stale and foreign caches, and the command line."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatarcast.avatar import mesh
from avatarcast.avatar.cache import AvatarCacheError, BuildSettings
from avatarcast.avatar.prepare import build, ensure, load
from avatarcast.avatar.runtime import for_output
from avatarcast.avatar.track import NoFaceError, fill_gaps
from harness.services import ROOT

from ..faces import FACELESS, PORTRAIT, make_video

# The source as it is: these tests read the portrait's own pixels (its mouth at (222, 145) of
# 512x512); test_framing.py covers the face box that an image gets by default.
SETTINGS = BuildSettings(fps=30, max_frames=600, max_side=1920, framing="source")


def _inside(points: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    x0, y0, x1, y1 = box
    return bool(((points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0)
                 & (points[:, 1] < y1)).all())


def test_prepare_an_image(tmp_path: Path) -> None:
    directory = build(PORTRAIT, "astro", tmp_path, SETTINGS)
    p = load(directory)
    assert p.manifest["frames"] == 1 and p.manifest["size"] == [512, 512]
    assert p.manifest["source"]["kind"] == "image" and p.found.tolist() == [True]
    lips = p.landmarks[0][list(mesh.OUTER_UPPER + mesh.OUTER_LOWER)]
    # The portrait's mouth lies around (222, 145) in the 512x512 picture.
    assert _inside(lips, (190, 125, 260, 165)), lips.mean(0)
    # The mouth mask covers the lips, not the eyes or the forehead.
    mouth = p.mouth_masks[0]
    assert mouth.shape == (256, 256) and mouth.max() == 255
    assert mouth[:100].max() == 0
    lower = p.lower_face_masks[0]
    assert (lower > 0).sum() > (mouth > 0).sum()
    # Fitted to a wide output: letterboxed, landmarks follow the pixels.
    a = for_output(p, 1280, 720, keep_rgb=False)
    assert a.idle.frames[0].shape == (1080, 1280)
    assert a.faces is not None
    np.testing.assert_allclose(
        a.faces.landmarks[0][:, :2], p.landmarks[0][:, :2] * (720 / 512) + [280, 0], atol=0.01
    )


def test_prepare_a_video_keeps_faceless_frames_in_step(tmp_path: Path) -> None:
    video = make_video(tmp_path / "idle.mp4")
    p = load(build(video, "drift", tmp_path / "avatars", SETTINGS))
    assert p.manifest["frames"] == 16 == len(p.frames) == len(p.landmarks)
    assert [i for i, f in enumerate(p.found) if not f] == list(FACELESS)
    # The face drifts left 2 px per frame (source crop moves right); a frame without a face
    # takes its place in between its neighbours.
    nose = p.landmarks[:, 1, 0]
    assert np.all(np.diff(nose) < 0.5), nose
    assert nose[7] > nose[9] > nose[11]


def test_fill_gaps_interpolates_and_holds_the_ends() -> None:
    pts = [None, np.full((2, 3), 1.0, np.float32), None, np.full((2, 3), 3.0, np.float32), None]
    filled, have = fill_gaps(pts)
    assert have.tolist() == [False, True, False, True, False]
    assert filled[:, 0, 0].tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    with pytest.raises(NoFaceError):
        fill_gaps([None, None])


def test_no_face_is_a_clear_error(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=320x240",
                    "-frames:v", "1", str(grey)], check=True)
    with pytest.raises(NoFaceError, match="no face found"):
        build(grey, "grey", tmp_path, SETTINGS)
    assert not (tmp_path / "grey").exists()


def test_stale_and_foreign_caches_are_rebuilt_never_used(tmp_path: Path) -> None:
    source = tmp_path / "face.png"
    source.write_bytes(PORTRAIT.read_bytes())
    avatars = tmp_path / "avatars"
    directory = ensure("me", source, avatars, SETTINGS)
    first = json.loads((directory / "manifest.json").read_text())
    assert first["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    built = (directory / "manifest.json").stat().st_ino
    # Current: used as it is. (A rebuild swaps in a new directory: a new manifest file.)
    assert ensure("me", None, avatars, SETTINGS) == directory
    assert (directory / "manifest.json").stat().st_ino == built
    # The source changed: rebuilt.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(PORTRAIT), "-vf", "hflip",
                    str(source)], check=True)
    ensure("me", None, avatars, SETTINGS)
    manifest = json.loads((directory / "manifest.json").read_text())
    # Rebuilt from the changed source: the manifest records the new file.
    assert (directory / "manifest.json").stat().st_ino != built
    assert manifest["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert manifest["source"]["sha256"] != first["source"]["sha256"]
    lm = load(directory).landmarks[0]
    assert lm[mesh.CHIN, 0] > 256  # the mirrored face: its chin is right of the centre now
    # A foreign manifest (another format): rebuilt from its recorded source.
    manifest["format"] = 999
    (directory / "manifest.json").write_text(json.dumps(manifest))
    ensure("me", None, avatars, SETTINGS)
    assert json.loads((directory / "manifest.json").read_text())["format"] == 1
    # Other settings: rebuilt.
    ensure("me", None, avatars, BuildSettings(fps=25, max_frames=600, max_side=1920,
                                              framing="source"))
    assert json.loads((directory / "manifest.json").read_text())["settings"]["fps"] == 25
    # Stale with its source gone: a clear error, not a silent use.
    source.unlink()
    with pytest.raises(AvatarCacheError, match="avatarcast prepare --id me"):
        ensure("me", None, avatars, SETTINGS)
    with pytest.raises(AvatarCacheError, match="not prepared yet"):
        ensure("nobody", None, avatars, SETTINGS)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"AVATARCAST_AVATAR__AVATARS_DIR": str(tmp_path / "avatars"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "avatarcast", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_prepare_command(tmp_path: Path) -> None:
    done = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "cli")
    assert done.returncode == 0, done.stderr
    assert "prepared" in done.stdout and (tmp_path / "avatars" / "cli" / "manifest.json").exists()
    # Framed on the face (the default for an image), 512 px of source is soft at 720p: said.
    assert ("warning: the face crop 422x236 of the 512x512 source is scaled up 3.05x to "
            "1280x720 and looks soft" in done.stdout), done.stdout
    again = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "cli")
    assert again.returncode == 0 and "up to date" in again.stdout
    wrong = _cli(tmp_path, "prepare", "--video", str(PORTRAIT), "--id", "cli")
    assert wrong.returncode == 2 and "use --image" in wrong.stderr
    bad_id = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "../x")
    assert bad_id.returncode == 2 and "invalid avatar id" in bad_id.stderr
    grey = tmp_path / "grey.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=64x64",
                    "-frames:v", "1", str(grey)], check=True)
    none = _cli(tmp_path, "prepare", "--image", str(grey), "--id", "grey")
    assert none.returncode == 1 and "no face found" in none.stderr


def test_an_avatar_asked_for_by_two_at_once_is_built_once_and_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Two channels of one worker on one avatar, or two workers sharing avatars_dir, start at
    once: the second waits for the first's build and finds the avatar ready. Built twice at
    once, each wrote over the other's files and a channel failed with "avatar cache
    damaged"."""
    import logging
    import threading

    results: list[Path | BaseException] = []

    def ask() -> None:
        try:
            results.append(ensure("twice", PORTRAIT, tmp_path, SETTINGS))
        except BaseException as exc:  # (reported below)
            results.append(exc)

    with caplog.at_level(logging.INFO, logger="avatarcast.avatar.prepare"):
        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert results == [tmp_path / "twice"] * 2, results
    assert caplog.text.count("building it from") == 1
    assert load(tmp_path / "twice").manifest["frames"] == 1
