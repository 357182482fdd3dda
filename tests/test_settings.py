"""Settings: defaults, invalid values named by their field, cross-checks, .env, and the
example file documenting every setting."""

from __future__ import annotations

import pytest

from avatarcast.settings import SettingsError, load_settings


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.video.fps == 30 and s.audio.sample_rate == 48000 and s.playout.crossfade_frames == 4


def test_invalid_settings_name_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATARCAST_VIDEO__FPS", "fast")
    monkeypatch.setenv("AVATARCAST_OUTPUT__RTMP_URLS", '["http://example.com/live/SECRETKEY99"]')
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "video.fps (AVATARCAST_VIDEO__FPS)" in text
    assert "output.rtmp_urls" in text
    assert "SECRETKEY99" not in text


def test_settings_cross_checks(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATARCAST_VIDEO__FPS", "7")
    with pytest.raises(SettingsError, match=r"multiple of video\.fps"):
        load_settings()


def test_settings_from_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AVATARCAST_VIDEO__WIDTH=640\nAVATARCAST_PLAYOUT__GAP_MS=0\n")
    s = load_settings()
    assert s.video.width == 640 and s.playout.gap_ms == 0


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    from pydantic import BaseModel

    from avatarcast.settings import Settings

    text = (Path(__file__).parent.parent / ".env.dev.example").read_text()

    def names(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out += names(ann, f"{prefix}{name.upper()}__")
            else:
                out.append(prefix + name.upper())
        return out

    missing = [n for n in names(Settings, "AVATARCAST_") if n + "=" not in text]
    assert not missing, f"undocumented settings: {missing}"
