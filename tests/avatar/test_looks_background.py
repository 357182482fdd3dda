"""A background switched live (Looks.set_background): every loaded look is made again over the
new background with an animator of its own; a look that renders meanwhile goes on and is closed
once it is done; a background that cannot be had changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatarcast.avatar.face.looks import Look, LookError, Looks
from avatarcast.avatar.face.service import FaceService
from avatarcast.avatar.face.still import StillAnimator
from avatarcast.avatar.runtime import Avatar
from avatarcast.media.idle import IdleCycle
from avatarcast.playout.scene.spec import Background
from avatarcast.settings import Settings

W, H = 320, 180


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"video": {"width": W, "height": H},
                                    "avatar": {"avatars_dir": str(tmp_path / "avatars")}})


def test_a_switch_makes_every_look_again_and_retires_the_old_once_idle(tmp_path: Path) -> None:
    async def main() -> None:
        idle = IdleCycle([np.full((H * 3 // 2, W), 90, np.uint8)])
        face = FaceService(StillAnimator(), timeout_s=5.0)
        await face.start(Avatar(idle))
        looks = Looks(_settings(tmp_path), Look("still", None, Avatar(idle), face))
        old = looks.default
        old.busy = 1  # a text renders with it
        await looks.set_background(Background(color="#ff00ff"))
        new = looks.default
        assert new is not old and new.face is not old.face and new.animator == "still"
        rgb = np.asarray(cv2.cvtColor(new.idle.frames[0],
                                                    cv2.COLOR_YUV2RGB_I420))
        corner = rgb[:20, :20].reshape(-1, 3).mean(axis=0)  # behind the person: magenta
        assert corner[0] > 200 and corner[1] < 60 and corner[2] > 200, corner
        assert old in looks._retired  # still rendering: not closed yet
        old.busy = 0
        await looks.set_background(None)  # back to the portrait's own; the old one closed
        assert old not in looks._retired and looks.default is not new
        plain = np.asarray(cv2.cvtColor(looks.default.idle.frames[0],
                                                      cv2.COLOR_YUV2RGB_I420))
        assert np.abs(plain[:20, :20].astype(int) - rgb[:20, :20]).mean() > 40
        before = looks.default
        with pytest.raises(LookError, match="scene: background"):
            await looks.set_background(Background(image=tmp_path / "gone.png"))
        assert looks.default is before  # nothing changed
        await looks.aclose()

    asyncio.run(main())
