"""One typed, validated configuration; each component receives only its own section.

Environment variables use the prefix ``AVATARCAST_`` and ``__`` between nested names, e.g.
``AVATARCAST_VIDEO__FPS=25``; a ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Avatar ids name a folder under avatar.avatars_dir.
AVATAR_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

SpeechProvider = Literal["piper", "edge", "espeak"]
AnimatorName = Literal["auto", "lite", "musetalk", "still"]


class BrokerSettings(BaseModel):
    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    speak_queue: str = "avatarcast.speak"
    control_queue: str = "avatarcast.control"
    dead_letter_queue: str = "avatarcast.dead"
    # Lifecycle events (accepted, on_air, finished, failed, ...) go to this topic exchange,
    # routing key = the event's name.
    events_exchange: str = "avatarcast.events"
    # Messages held unacked at once: the next utterance renders while one is on air, and an
    # `interrupt` message is seen while this many wait before it.
    prefetch: int = Field(default=32, ge=2, le=1000)
    reconnect_interval_s: float = Field(default=2.0, gt=0)
    dedupe_capacity: int = Field(default=10_000, ge=100)
    # A message whose handling the process died in (crash, out of memory, kill) this many
    # times is dead-lettered at its next delivery instead of being tried again.
    crash_limit: int = Field(default=3, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _amqp_scheme(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return v


class VideoSettings(BaseModel):
    width: int = Field(default=1280, ge=64, le=3840)
    height: int = Field(default=720, ge=64, le=2160)
    fps: int = Field(default=30, ge=1, le=60)
    bitrate_kbps: int = Field(default=2500, ge=100, le=50_000)
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium"
    ] = "veryfast"
    keyframe_interval_s: float = Field(default=2.0, gt=0, le=10)

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (yuv420p needs even dimensions)")
        return v


class AudioSettings(BaseModel):
    sample_rate: int = 48000
    bitrate_kbps: int = Field(default=128, ge=32, le=320)

    @field_validator("sample_rate")
    @classmethod
    def _aac_rate(cls, v: int) -> int:
        if v not in (44100, 48000):
            raise ValueError("must be 44100 or 48000")
        return v


class OutputSettings(BaseModel):
    # Each URL may carry a stream key; they are secrets and are redacted in every log line.
    rtmp_urls: list[SecretStr] = Field(default_factory=list)
    record_path: Path | None = None
    ffmpeg_path: str = "ffmpeg"
    queue_frames: int = Field(default=8, ge=2, le=120)
    restart_backoff_min_s: float = Field(default=0.5, gt=0)
    restart_backoff_max_s: float = Field(default=10.0, gt=0)
    # A run shorter than this counts as a failed start and grows the backoff.
    stable_after_s: float = Field(default=10.0, gt=0)

    @field_validator("rtmp_urls")
    @classmethod
    def _rtmp_scheme(cls, v: list[SecretStr]) -> list[SecretStr]:
        for url in v:
            if not url.get_secret_value().startswith(("rtmp://", "rtmps://")):
                raise ValueError("every URL must start with rtmp:// or rtmps://")
        return v


# NASA's public-domain astronaut portrait (shipped with scikit-image), inside the package so an
# installed wheel runs without a checkout.
DEFAULT_IDLE_SOURCE = Path(__file__).resolve().parent / "avatar" / "avatar.png"


class AvatarSettings(BaseModel):
    # A prepared avatar (`avatarcast prepare --id ID`); without one, the idle source is used,
    # prepared on the fly as "auto-<file stem>" when the animator needs a face.
    id: str | None = None
    idle_source: Path = DEFAULT_IDLE_SOURCE
    avatars_dir: Path = Path("models/avatars")
    max_idle_frames: int = Field(default=600, ge=1, le=10_000)
    # Cached frames are scaled down to this many pixels on their long side.
    max_side: int = Field(default=1920, ge=64, le=4096)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str | None) -> str | None:
        if v is not None and not AVATAR_ID_PATTERN.match(v):
            raise ValueError("use 1-64 letters, digits, '.', '_' or '-'")
        return v


class PlayoutSettings(BaseModel):
    crossfade_frames: int = Field(default=4, ge=0, le=30)
    gap_ms: int = Field(default=400, ge=0, le=10_000)
    # Frames between a segment being planned and its first frame on air.
    lead_frames: int = Field(default=3, ge=1, le=60)
    render_ahead: int = Field(default=1, ge=1, le=8)
    # Audio an utterance must have before it airs while later sentences are still synthesized.
    min_buffer_ms: int = Field(default=1500, ge=0, le=60_000)
    # Rendered frames held ahead of air, per utterance (the one on air and each rendered
    # ahead): memory is bounded by this, never by the length of a text. At least a second.
    render_buffer_mb: int = Field(default=128, ge=16, le=16_384)

    def buffer_frames(self, video: VideoSettings) -> int:
        frame = video.width * video.height * 3 // 2  # yuv420p
        return max(video.fps, self.render_buffer_mb * 1024 * 1024 // frame)


class SpeechSettings(BaseModel):
    providers: list[SpeechProvider] = Field(default_factory=lambda: ["piper", "espeak"])  # type: ignore[arg-type]
    piper_model: Path | None = None
    piper_voices_dir: Path = Path("models/voices")
    edge_voice: str = "en-US-GuyNeural"
    espeak_voice: str = "en-us"
    espeak_path: str = "espeak-ng"
    retry_attempts: int = Field(default=2, ge=1, le=10)
    timeout_s: float = Field(default=30.0, gt=0)
    # Where piper voices patched to give phoneme timings are kept; state_dir/voices if unset.
    cache_dir: Path | None = None

    @field_validator("providers")
    @classmethod
    def _non_empty(cls, v: list[SpeechProvider]) -> list[SpeechProvider]:
        if not v:
            raise ValueError("needs at least one provider")
        return v


class FaceSettings(BaseModel):
    # auto: musetalk when a CUDA GPU and its weights are there, lite otherwise.
    animator: AnimatorName = "auto"
    models_dir: Path = Path("models")
    device: Literal["auto", "cuda", "cpu"] = "auto"
    # MuseTalk frames per UNet call; 0 picks it from free GPU memory.
    batch_size: int = Field(default=0, ge=0, le=64)
    fp16: bool = True
    # An animator silent for this long fails the utterance and gets a fresh thread.
    timeout_s: float = Field(default=30.0, gt=0, le=600)


class CaptionSettings(BaseModel):
    # Burn the spoken words into the picture (a lower-third line, word by word as spoken).
    burn_in: bool = False
    max_chars: int = Field(default=42, ge=12, le=120)
    # A WebVTT file of everything that aired (strftime fields expanded, one file per encoder
    # run), and JSON lines with every aired message's words and phones on the stream's clock.
    vtt_path: Path | None = None
    transcript_path: Path | None = None


class HealthSettings(BaseModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class ShutdownSettings(BaseModel):
    grace_s: float = Field(default=30.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AVATARCAST_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # text: for people; json: one JSON object per line (ts, level, logger, message, id).
    log_format: Literal["text", "json"] = "text"
    state_dir: Path = Path("var/state")
    broker: BrokerSettings = BrokerSettings()
    video: VideoSettings = VideoSettings()
    audio: AudioSettings = AudioSettings()
    output: OutputSettings = OutputSettings()
    avatar: AvatarSettings = AvatarSettings()
    playout: PlayoutSettings = PlayoutSettings()
    speech: SpeechSettings = SpeechSettings()
    face: FaceSettings = FaceSettings()
    captions: CaptionSettings = CaptionSettings()
    health: HealthSettings = HealthSettings()
    shutdown: ShutdownSettings = ShutdownSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.audio.sample_rate % self.video.fps:
            raise ValueError(
                f"audio.sample_rate ({self.audio.sample_rate}) must be a multiple of video.fps "
                f"({self.video.fps}) so that every frame carries a whole number of samples"
            )
        if self.output.restart_backoff_max_s < self.output.restart_backoff_min_s:
            raise ValueError("output.restart_backoff_max_s must be >= restart_backoff_min_s")
        return self


class SettingsError(Exception):
    """Settings failed validation; the message names every offending field."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        env = "AVATARCAST_" + "__".join(str(p) for p in err["loc"] if not isinstance(p, int))
        # Never echo the input: it may be a password or a stream key.
        lines.append(f"{field} ({env.upper()}): {err['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
