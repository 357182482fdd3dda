"""The mouth atlas: built by `prepare --talking` from a video of the person speaking, and
pasted by the lite animator: real mouths chosen for the track, nothing outside the mouth and
chin touched, the idle frame itself at rest.

The talking reference (harness/talking.py) wears mouths drawn by harness/mouths.py, not made
by any code under test: a text it never spoke must come out with its mouths, of the right
class for each sound, in place on the portrait's face."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatarcast.avatar import mesh
from avatarcast.avatar.cache import ATLAS_FILE, BuildSettings
from avatarcast.avatar.face.atlas import MouthAtlas
from avatarcast.avatar.face.base import ANIMATOR_RATE
from avatarcast.avatar.face.lite import LiteAnimator
from avatarcast.avatar.face.mouthtrack import MouthTrack, Timeline
from avatarcast.avatar.face.visemes import phones_from_alignment
from avatarcast.avatar.mouthframe import apply, similarity
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import Avatar, for_output
from avatarcast.media.audio import resample
from harness.mouths import Phone, Seen, seen
from harness.talking import RATE, speak

from ..faces import PORTRAIT

FPS = 30
W, H = 640, 360


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AVATARCAST_AVATAR__AVATARS_DIR": str(tmp_path / "avatars")}
    return subprocess.run([sys.executable, "-m", "avatarcast", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def atlas_avatar(tmp_path_factory: pytest.TempPathFactory, talking_video: Path) -> Avatar:
    d = tmp_path_factory.mktemp("avatars")
    directory = build(PORTRAIT, "atlas", d, BuildSettings(FPS, 600, 1920), talking=talking_video)
    return for_output(load(directory), W, H, keep_rgb=False)


def _track(jaw: list[float], spread: list[float] | None = None,
           press: list[float] | None = None) -> MouthTrack:
    n = len(jaw)
    z = [0.0] * n
    return MouthTrack(np.array(jaw, np.float32), np.array(spread or z, np.float32),
                      np.array(press or z, np.float32), np.zeros(n, np.float32),
                      np.zeros(n, np.int8))


def test_similarity_recovers_a_rotation_scale_and_shift() -> None:
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 100, (10, 2))
    a = np.deg2rad(7)
    c, s = 1.3 * np.cos(a), 1.3 * np.sin(a)
    truth = np.array([[c, -s, 12], [s, c, -5]])
    moved = apply(truth, pts)
    assert np.allclose(similarity(pts, moved), truth, atol=1e-4)


def test_prepare_builds_an_atlas_of_real_mouths(atlas_avatar: Avatar) -> None:
    assert atlas_avatar.directory is not None
    manifest = json.loads((atlas_avatar.directory / "manifest.json").read_text())
    talking = manifest["talking"]
    assert talking["clusters"] == 14 and 40 <= talking["entries"] <= 56
    assert talking["faces"] == talking["frames"] > 200
    atlas = MouthAtlas.load(atlas_avatar.directory)
    assert atlas is not None and len(atlas) == talking["entries"]
    # The reference opened and closed its mouth: the atlas holds both, as real pixels.
    assert atlas.open.min() < atlas.open_lo + 0.05 and atlas.open.max() > atlas.open_hi - 0.05
    assert atlas.patches.std() > 20


def test_the_atlas_mouth_follows_the_track_and_touches_nothing_else(
    atlas_avatar: Avatar,
) -> None:
    animator = LiteAnimator(FPS)
    animator.load(atlas_avatar)
    idle = atlas_avatar.idle.frames[0]
    jaw = [0.0] * 4 + [0.9] * 8 + [0.0] * 4 + [0.0] * 8 + [0.0] * 4
    press = [0.0] * 16 + [1.0] * 8 + [0.0] * 4
    track = _track(jaw, press=press)
    frames = [f for b in animator.render(np.zeros(len(jaw) * 533, np.int16), [0] * len(jaw),
                                         track) for f in b]
    assert len(frames) == len(jaw)
    assert atlas_avatar.faces is not None
    lm = atlas_avatar.faces.landmarks[0]
    lips = lm[list(mesh.OUTER_UPPER + mesh.OUTER_LOWER), :2]
    (x0, y0), (x1, y1) = lips.min(0).astype(int), lips.max(0).astype(int)
    mouth = (slice(y0, y1 + 1), slice(x0, x1 + 1))
    nose_y = int(lm[mesh.NOSE_BOTTOM][1])

    def moved(f: np.ndarray, region: tuple[slice, slice]) -> float:
        return float(np.abs(f[:H][region].astype(np.int16) - idle[:H][region]).mean())

    # At rest: the idle frame itself, to the pixel.
    for k in (0, 1, 2, 26, 27):
        assert np.array_equal(frames[k], idle), k
    # Open: the lips part (a darker gap) ...
    open_luma = [float(frames[k][:H][mouth].mean()) for k in range(6, 11)]
    assert max(open_luma) < float(idle[:H][mouth].mean()) - 4
    # ... and closed for m/b/p: the gap is gone again, the mouth still a real one.
    atlas = MouthAtlas.load(atlas_avatar.directory)
    assert atlas is not None
    atlas.attach(atlas_avatar.faces.landmarks, atlas_avatar.idle.frames)
    chosen = atlas.choose(track, [0] * len(jaw))
    assert all(atlas.open[chosen[k]] < atlas.open_lo + 0.2 * (atlas.open_hi - atlas.open_lo)
               for k in range(17, 23))
    # Brighter than every open frame. (The atlas is built from a synthesized talking reference
    # and its frames vary from run to run: CI measured 161.0 against 157.1, and 161.3 against
    # 159.4, so a fixed margin of grey levels was a coin toss.)
    assert min(float(frames[k][:H][mouth].mean()) for k in range(18, 22)) > max(open_luma)
    # Nothing above the nose's bottom or beside the face changes.
    above = (slice(0, nose_y), slice(0, W))
    assert max(moved(f, above) for f in frames) == 0.0
    face = lm[:, :2]
    left = (slice(0, H), slice(0, max(int(face[:, 0].min()) - 5, 1)))
    assert max(moved(f, left) for f in frames) == 0.0


# Not one of the reference's sentences: closures, open and rounded vowels in new words.
NEW_TEXT = "Bob's mom bought a hot pot of soup, and Pam wore blue wool boots to the pool."


def test_a_text_it_never_spoke_shows_the_references_mouths_for_each_sound(
    atlas_avatar: Avatar,
) -> None:
    # At 720p, where the mouth is about 60 pixels wide.
    assert atlas_avatar.directory is not None
    avatar = for_output(load(atlas_avatar.directory), 1280, 720, keep_rgb=False)
    pcm, sounds, spoken = speak(NEW_TEXT)
    spf = RATE // FPS
    n = len(pcm) // spf
    # The mouth track as the daemon makes it, from piper's timings.
    timeline = Timeline(spf, FPS)
    at = 0
    for s in spoken:
        assert s.alignment
        timeline.add(phones_from_alignment(s.alignment, at)[0])
        at += len(s.pcm)
    audio = resample(pcm[: n * spf], RATE, ANIMATOR_RATE)
    track = timeline.track(0, n, audio, ANIMATOR_RATE)
    animator = LiteAnimator(FPS)
    animator.load(avatar)
    frames = [f for b in animator.render(audio, [0] * n, track) for f in b]
    assert len(frames) == n and avatar.faces is not None
    # Where the portrait's own mouth is, in output pixels: the reference's was drawn there.
    lm = avatar.faces.landmarks[0]
    right, left = lm[mesh.MOUTH_RIGHT, :2], lm[mesh.MOUTH_LEFT, :2]
    half = float(np.linalg.norm(left - right)) / 2
    centre = (float(right[0] + left[0]) / 2, float(lm[13, 1] + lm[14, 1]) / 2)
    idle = avatar.idle.frames[0]
    looks = [seen(f, centre, half) for f in frames]

    def window(p: Phone) -> list[Seen]:
        # The frames of the sound, from two before it (the lips lead the sound).
        return looks[max(p.start // spf - 2, 0) : -(-p.end // spf)]

    inner = [p for p in sounds if 3 * spf <= p.start and p.end <= (n - 3) * spf]
    closures = [p for p in inner if p.kind == "closed"]
    opens = [p for p in inner if p.kind == "open" and p.end - p.start >= 2 * spf]
    rounds = [p for p in inner if p.kind in ("round", "oo")]
    assert len(closures) >= 8 and len(opens) >= 3 and len(rounds) >= 6  # what NEW_TEXT says

    # The reference's mouths, not the portrait's own moved (it wears no lipstick): on every
    # frame that is not the idle frame but those fading in and out of it.
    moving = [v for f, v in zip(frames, looks, strict=True) if not np.array_equal(f, idle)]
    full = float(np.median([v.lips for v in moving]))
    assert full > 0.2 * half**2, "no lipstick: these are not the reference's mouths"
    # The portrait's own lips pass for a little lipstick (128 px seen against a median of
    # 2 523 on the reference's mouths, which vary with piper's randomness): a tenth at most.
    assert seen(idle, centre, half).lips < 0.1 * full
    wearing = [v for v in moving if v.lips >= 0.5 * full]
    assert len(wearing) >= 0.85 * len(moving) and len(moving) > n // 2

    # Each class of sound with the reference's mouths of that class: the lips shut (no gap,
    # no dark opening, the full width) on m/b/p, apart on a long open vowel ("hot", "Pam"),
    # narrow and round on o/u/w ("bought", "soup", "wool"); the portrait's rest mouth spans
    # 2 * half.
    def shut(v: Seen) -> bool:
        return (v.lips >= 0.5 * full and v.gap <= 0.07 * half and v.dark == 0
                and v.width >= 1.5 * half)

    def apart(v: Seen) -> bool:
        return v.lips >= 0.5 * full and v.dark > 0 and (v.gap >= 0.1 * half
                                                        or v.dark >= 0.1 * half**2)

    def rounded(v: Seen) -> bool:
        return v.lips >= 0.5 * full and v.width <= 1.35 * half

    for kind, sounds_of, shown in (("closed", closures, shut), ("open", opens, apart),
                                   ("rounded", rounds, rounded)):
        missed = [p for p in sounds_of if not any(shown(v) for v in window(p))]
        # One word of a class may miss its mouth: the reference's mouths and this text's
        # timings both come from piper, whose noise varies them from run to run (CI on
        # 2026-12-04 missed, once, an "oo" and the "round" after it, one word; and once one
        # long open vowel). Sounds next to each other are one word.
        words = [p for i, p in enumerate(missed) if i == 0 or missed[i - 1].end != p.start]
        assert len(words) <= 1, (kind, missed)
    # ... and in place on the portrait's face, however the reference's head moved.
    # (Here within 0.11 of the half-width, from the shapes' own asymmetry; the reference's
    # head moved the mouth by over half of it.)
    assert max(abs(v.x - centre[0]) for v in wearing) < 0.2 * half


def test_neighbouring_frames_keep_one_mouth_on_a_steady_target(atlas_avatar: Avatar) -> None:
    atlas = MouthAtlas.load(atlas_avatar.directory)
    assert atlas is not None and atlas_avatar.faces is not None
    atlas.attach(atlas_avatar.faces.landmarks, atlas_avatar.idle.frames)
    chosen = atlas.choose(_track([0.6] * 30), [0] * 30)
    assert len(set(chosen.tolist())) == 1
    wide = atlas.choose(_track([0.3] * 10, spread=[1.0] * 10), [0] * 10)
    round_ = atlas.choose(_track([0.3] * 10, spread=[-1.0] * 10), [0] * 10)
    assert atlas.width[wide].mean() > atlas.width[round_].mean() + 0.05


def test_prepare_talking_from_the_command_line(tmp_path: Path, talking_video: Path) -> None:
    done = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "talker",
                "--talking", str(talking_video))
    assert done.returncode == 0, done.stderr
    assert "with a mouth atlas of" in done.stdout
    directory = tmp_path / "avatars" / "talker"
    assert (directory / ATLAS_FILE).is_file()
    again = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "talker",
                 "--talking", str(talking_video))
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout
    plain = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "talker")
    assert plain.returncode == 0 and "prepared" in plain.stdout
    assert not (directory / ATLAS_FILE).exists()
    missing = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "talker",
                   "--talking", str(tmp_path / "nope.mp4"))
    assert missing.returncode == 2 and "talking reference not found" in missing.stderr
    still = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "talker",
                 "--talking", str(PORTRAIT))
    assert still.returncode == 2 and "must be a video" in still.stderr
    short = tmp_path / "short.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(talking_video), "-frames:v", "10",
                    str(short)], check=True)
    brief = _cli(tmp_path, "prepare", "--image", str(PORTRAIT), "--id", "talker",
                 "--talking", str(short))
    assert brief.returncode == 1 and "an atlas needs at least" in brief.stderr
    assert "Traceback" not in brief.stderr  # one line, after the progress bars
    assert "an atlas needs at least" in brief.stderr.strip().splitlines()[-1]


def test_the_atlas_is_rebuilt_with_its_reference_and_kept_without_it(
    tmp_path: Path, talking_video: Path,
) -> None:
    from avatarcast.avatar.prepare import ensure, stale_reason

    settings = BuildSettings(FPS, 600, 1920)
    copy = tmp_path / "talk.mp4"
    copy.write_bytes(talking_video.read_bytes())
    directory = build(PORTRAIT, "kept", tmp_path / "avatars", settings, talking=copy)
    assert stale_reason(directory, "kept", settings, PORTRAIT, talking=copy) is None
    assert stale_reason(directory, "kept", settings, PORTRAIT) == (
        "it has a mouth atlas, now asked for without one")
    # The daemon (ensure) keeps an atlas whose reference is no longer at hand ...
    copy.rename(tmp_path / "moved.mp4")
    assert ensure("kept", None, tmp_path / "avatars", settings) == directory
    assert (directory / ATLAS_FILE).is_file()
    # ... and rebuilds it when the reference changed.
    short = tmp_path / "talk.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "moved.mp4"), "-t", "5",
                    str(short)], check=True)
    assert stale_reason(directory, "kept", settings, PORTRAIT, talking=short) == (
        "the talking reference changed")
    ensure("kept", None, tmp_path / "avatars", settings)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["talking"]["frames"] < 200
