"""The person's masks kept in the avatar's cache (avatar/person.py): `prepare` makes them, a
load reads them, and a background put behind the avatar comes from them without running the
segmentation model again; a cache made before them gets them once, at its first background;
masks from other models are made again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatarcast.avatar import person
from avatarcast.avatar.background import person_masks, with_background
from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import for_output
from avatarcast.avatar.segment import Segmenter
from avatarcast.playout.scene.spec import Background

from ..faces import PORTRAIT

SETTINGS = BuildSettings(fps=30, max_frames=600, max_side=1920, framing="face")
W, H = 640, 360


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(PORTRAIT, "astro", tmp_path_factory.mktemp("avatars"), SETTINGS)


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    runs: list[int] = []
    real = Segmenter.probability

    def counted(self: Segmenter, rgb: np.ndarray) -> np.ndarray:
        runs.append(1)
        return real(self, rgb)

    monkeypatch.setattr(Segmenter, "probability", counted)
    return runs


def test_prepare_keeps_the_masks_and_a_background_needs_no_model(
        prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (prepared / person.PERSON_FILE).is_file()
    p = load(prepared)
    assert p.person is not None and p.person.shape[0] == len(p.frames) == 1
    runs = _count_runs(monkeypatch)
    avatar = for_output(p, W, H, keep_rgb=False)
    keyed = with_background(avatar, Background(color="#00b140"))
    assert runs == []  # from the cache alone
    # The same mask as the model gives on the output frame itself, but for its soft edge.
    monkeypatch.undo()
    from_cache = next(person_masks(avatar))
    direct = Segmenter()(np.asarray(cv2.cvtColor(avatar.idle.frames[0],
                                                 cv2.COLOR_YUV2RGB_I420)))
    assert from_cache.shape == (H, W)
    assert from_cache.dtype == np.uint8
    assert np.mean(np.abs(from_cache / 255 - direct) > 0.5) < 0.02
    assert keyed.idle.frames[0].shape == avatar.idle.frames[0].shape


def test_a_cache_without_masks_gets_them_once(prepared: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "astro"
    shutil.copytree(prepared, old)
    (old / person.PERSON_FILE).unlink()  # as a cache made before the masks were kept
    p = load(old)
    assert p.person is None
    runs = _count_runs(monkeypatch)
    with_background(for_output(p, W, H, keep_rgb=False), Background(color="#ff00ff"))
    assert len(runs) == 1 and (old / person.PERSON_FILE).is_file()
    again = load(old)
    assert again.person is not None
    with_background(for_output(again, W, H, keep_rgb=False), Background(color="#00b140"))
    assert len(runs) == 1  # kept: not run again
    # Masks from other models are not used: made again and kept.
    np.savez(old / person.PERSON_FILE, prob=again.person, models=np.array("other"),
             made=np.array(person.made(old)))
    assert load(old).person is None
    assert person.ensure(old, 1).shape == again.person.shape and len(runs) == 2
    assert person.read(old, 1) is not None
    whole = (old / person.PERSON_FILE).read_bytes()
    for torn in (b"torn", whole[: len(whole) // 2], b""):  # made again, never a crash
        (old / person.PERSON_FILE).write_bytes(torn)
        assert person.read(old, 1) is None
        assert load(old).person is None


def test_masks_of_other_frames_are_never_used(prepared: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An avatar prepared again (new frames, same count) does not take the old masks; nor
    does one prepared again while its masks were being made keep the ones made."""
    other = tmp_path / "astro"
    shutil.copytree(prepared, other)
    kept = person.read(other, 1)
    assert kept is not None
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["created"] = "2031-01-01T00:00:00+0000"  # as a new build writes it
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert person.read(other, 1) is None
    real = person.answers

    def rebuilt_meanwhile(frames: list[np.ndarray]) -> np.ndarray:
        manifest["created"] = "2032-01-01T00:00:00+0000"
        (other / "manifest.json").write_text(json.dumps(manifest))
        return real(frames)

    monkeypatch.setattr(person, "answers", rebuilt_meanwhile)
    assert person.ensure(other, 1).shape == kept.shape  # used for this load...
    assert person.read(other, 1) is None  # ...never kept for the new frames
    assert not list(other.glob(".person.npz.*"))  # and no temporary file left behind
