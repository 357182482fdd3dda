"""BiSeNet face parsing for MuseTalk's blend mask: the network in the public checkpoint's
layout, the mask built from a class map, the blend following the parser (and the landmark
mask without it), the cache key, broken weights, and `prepare` computing the material."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.face.mouthtrack import MouthTrack
from avatarcast.avatar.face.musetalk.animator import MuseTalkAnimator
from avatarcast.avatar.face.musetalk.bisenet import BiSeNet
from avatarcast.avatar.face.musetalk.material import FILE, LANDMARKS, PARSED
from avatarcast.avatar.face.musetalk.parsing import INPUT, FaceParser, mask_from_labels
from avatarcast.avatar.face.musetalk.weights import WeightsError
from avatarcast.avatar.masks import CROP
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import Avatar, for_output
from avatarcast.settings import FaceSettings
from harness.services import ROOT

from ...faces import PORTRAIT, make_video, voiced
from ...musetalk_tiny import build_tiny_musetalk, save_parser

FPS = 30
W, H = 320, 240
SKIN, NOSE, HAIR = 1, 10, 17

# Names and shapes from the public BiSeNet face-parsing code (context path over a ResNet-18,
# attention refinement at 1/16 and 1/32, feature fusion, a main and two auxiliary heads).
PUBLIC_KEYS = {
    "cp.resnet.conv1.weight": (64, 3, 7, 7),
    "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "cp.resnet.layer4.1.bn2.running_var": (512,),
    "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
    "cp.arm32.conv_atten.weight": (128, 128, 1, 1),
    "cp.arm32.bn_atten.bias": (128,),
    "cp.conv_head32.bn.weight": (128,),
    "cp.conv_head16.conv.weight": (128, 128, 3, 3),
    "cp.conv_avg.conv.weight": (128, 512, 1, 1),
    "ffm.convblk.conv.weight": (256, 256, 1, 1),
    "ffm.conv1.weight": (64, 256, 1, 1),
    "ffm.conv2.weight": (256, 64, 1, 1),
    "conv_out.conv.conv.weight": (256, 256, 3, 3),
    "conv_out.conv_out.weight": (19, 256, 1, 1),
    "conv_out16.conv_out.weight": (19, 64, 1, 1),
    "conv_out32.conv.bn.running_mean": (64,),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_musetalk(tmp_path_factory.mktemp("models"))


def _with_parser(tiny: Path, into: Path, winner: int | None) -> Path:
    shutil.copytree(tiny, into)
    save_parser(into, winner)
    return into


def _avatar(directory: Path) -> Avatar:
    video = make_video(directory / "idle.mp4", frames=6)
    prepared = load(build(video, "parsed", directory / "avatars", BuildSettings(FPS, 600, 1920)))
    return for_output(prepared, W, H, keep_rgb=True)


def _settings(models_dir: Path) -> FaceSettings:
    return FaceSettings(animator="musetalk", models_dir=models_dir, device="cpu", batch_size=4)


def _render(models_dir: Path, avatar: Avatar) -> tuple[MuseTalkAnimator, list[np.ndarray]]:
    anim = MuseTalkAnimator(_settings(models_dir), FPS)
    anim.load(avatar)
    indices = list(range(avatar.idle.length))
    audio = voiced(len(indices) / FPS)
    track = MouthTrack.closed(len(indices))
    return anim, [f for b in anim.render(audio, indices, track) for f in b]


def test_network_has_the_public_layout_and_loads_a_legacy_checkpoint(tmp_path: Path) -> None:
    state = BiSeNet().state_dict()
    for key, shape in PUBLIC_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    path = save_parser(tmp_path, seed=3)
    with path.open("rb") as f:
        assert f.read(2) != b"PK"  # the legacy format the 2019 checkpoint is in, not a zip
    parser = FaceParser.load(tmp_path, torch.device("cpu"), torch.float32)
    assert parser is not None
    for key, value in torch.load(path, weights_only=True).items():
        assert torch.equal(parser.net.state_dict()[key], value), key
    with torch.no_grad():
        assert parser.net(torch.zeros(1, 3, INPUT, INPUT)).shape == (1, 19, INPUT, INPUT)
    assert FaceParser.load(tmp_path / "absent", torch.device("cpu"), torch.float32) is None


def test_mask_keeps_skin_and_lips_in_the_lower_crop_only() -> None:
    labels = np.full((INPUT, INPUT), SKIN, np.uint8)
    mask = mask_from_labels(labels)
    assert mask.shape == (CROP, CROP)
    assert mask[: CROP // 2 - 25].max() == 0  # the upper half is cleared (and feathered)
    assert mask[CROP * 5 // 8 :].min() == 255
    assert mask_from_labels(np.full_like(labels, HAIR)).max() == 0
    assert mask_from_labels(np.full_like(labels, NOSE)).max() == 0
    # Skin only in the left half of the parsed square: the crop box is its centre 2/3, so
    # the mask ends at the crop's middle column, give or take the feathering.
    left = np.where(np.arange(INPUT)[None, :] < INPUT // 2, SKIN, 0).astype(np.uint8)
    half = mask_from_labels(np.broadcast_to(left, labels.shape).copy())
    row = half[CROP * 3 // 4]
    assert row[: CROP // 2 - 25].min() == 255 and row[CROP // 2 + 25 :].max() == 0
    # Skin only near the bottom of the context square, below the crop box: nothing remains.
    low = np.zeros_like(labels)
    low[INPUT * 5 // 6 + 2 :] = SKIN
    assert mask_from_labels(low).max() == 0
    # The jaw stretch: skin ending at 3/4 of the crop reaches a little further down.
    jaw = np.zeros_like(labels)
    crop_row = INPUT // 6 + int(0.75 * INPUT / 1.5)
    jaw[:crop_row] = SKIN
    stretched = mask_from_labels(jaw)
    assert stretched[round(0.75 * CROP) + 8, CROP // 2] > 128


def test_blend_follows_the_parser_and_the_cache_knows_which(tiny: Path, tmp_path: Path) -> None:
    avatar = _avatar(tmp_path)
    faces = avatar.faces
    assert faces is not None and avatar.directory is not None
    # All background: the parser says there is no face, so nothing is blended in.
    nothing = _with_parser(tiny, tmp_path / "background", winner=0)
    anim, frames = _render(nothing, avatar)
    assert anim._material is not None and anim._material.mask_source == PARSED
    assert all(np.array_equal(f, avatar.idle.frames[c]) for c, f in enumerate(frames))
    # All skin: the whole lower half of each crop box, out to its corners, which the landmark
    # mask (the face outline below the nose) never reaches.
    skin = _with_parser(tiny, tmp_path / "skin", winner=SKIN)
    anim, frames = _render(skin, avatar)
    _, plain = _render(tiny, avatar)
    for c, (parsed, landmark) in enumerate(zip(frames, plain, strict=True)):
        idle = avatar.idle.frames[c][:H].astype(int)
        x0, y0, x1, y1 = (round(float(v)) for v in faces.crop_boxes[c])
        rows = slice(max(0, y1 - 12), min(H, y1 - 4))
        for cols in (slice(max(0, x0 + 4), x0 + 12), slice(x1 - 12, min(W, x1 - 4))):
            corner = (rows, cols)
            assert np.abs(parsed[:H][corner].astype(int) - idle[corner]).max() > 0, c
            assert np.abs(landmark[:H][corner].astype(int) - idle[corner]).max() == 0, c
        changed = np.argwhere(parsed[:H] != avatar.idle.frames[c][:H])
        assert changed[:, 0].min() >= (y0 + y1) // 2 - 1  # never the upper half
    with np.load(avatar.directory / FILE) as cached:
        assert str(cached["source"]) == LANDMARKS  # the last load had no parser
    anim, _ = _render(skin, avatar)
    with np.load(avatar.directory / FILE) as cached:
        assert str(cached["source"]) == PARSED  # a parser changes the key: recomputed


def test_broken_parser_weights_are_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    broken = _with_parser(tiny, tmp_path / "broken", winner=None)
    (broken / "face-parse-bisent" / "79999_iter.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"face parsing weights .* do not load"):
        FaceParser.load(broken, torch.device("cpu"), torch.float32)
    wrong = broken / "face-parse-bisent" / "79999_iter.pth"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(WeightsError, match="Missing key"):
        FaceParser.load(broken, torch.device("cpu"), torch.float32)


def test_prepare_computes_the_musetalk_material(tiny: Path, tmp_path: Path) -> None:
    models = _with_parser(tiny, tmp_path / "models", winner=SKIN)
    env = {
        "PATH": "/usr/bin:/bin",
        "AVATARCAST_AVATAR__AVATARS_DIR": str(tmp_path / "avatars"),
        "AVATARCAST_FACE__ANIMATOR": "musetalk", "AVATARCAST_FACE__DEVICE": "cpu",
        "AVATARCAST_FACE__MODELS_DIR": str(models),
        "AVATARCAST_VIDEO__WIDTH": str(W), "AVATARCAST_VIDEO__HEIGHT": str(H),
    }
    done = subprocess.run(
        [sys.executable, "-m", "avatarcast", "prepare", "--image", str(PORTRAIT), "--id", "mt"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "1 latents, blend mask from face parsing" in done.stdout
    cached = tmp_path / "avatars" / "mt" / FILE
    stamp = cached.stat().st_mtime_ns
    avatar = for_output(load(tmp_path / "avatars" / "mt"), W, H, keep_rgb=True)
    anim = MuseTalkAnimator(_settings(models), FPS)
    anim.load(avatar)
    assert cached.stat().st_mtime_ns == stamp  # the daemon's start reads it, not recomputes
    assert anim._material is not None and anim._material.mask_source == PARSED
    env["AVATARCAST_FACE__MODELS_DIR"] = str(tmp_path / "none")
    gone = subprocess.run(
        [sys.executable, "-m", "avatarcast", "prepare", "--image", str(PORTRAIT), "--id", "mt"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert gone.returncode == 3 and "avatarcast models download" in gone.stderr
