"""One typed, validated configuration; each component receives only its own section.

Environment variables use the prefix ``AVATARCAST_`` and ``__`` between nested names, e.g.
``AVATARCAST_VIDEO__FPS=25``; a ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .app.chat.settings import ChatSettings
from .playout.scene.spec import SceneSettings

# Avatar ids name a folder under avatar.avatars_dir.
AVATAR_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CHANNEL_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

SpeechProvider = Literal["piper", "edge", "espeak", "openai"]
AnimatorName = Literal["auto", "lite", "musetalk", "still", "remote"]
Framing = Literal["auto", "source", "face"]


class BrokerSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    """RabbitMQ URL (amqp:// or amqps://); a secret, redacted in logs. For a cluster, one URL
    may list its nodes' hosts: amqp://user:pass@rabbit1:5672,rabbit2:5672,rabbit3/vhost."""
    urls: list[SecretStr] = []
    """A cluster's nodes, one URL each (a JSON list); when set, replaces url. Every connection
    starts at the first node and goes on to the next when one is lost or does not answer."""
    queue_type: Literal["auto", "quorum", "classic"] = "auto"
    """Type of the speak, control, dead-letter and standing queues: quorum queues are
    replicated over the cluster's nodes; auto = quorum where the broker has them (RabbitMQ 3.8
    or later), classic otherwise. A queue that already exists keeps its type (see the README's
    Cluster)."""
    delivery_limit: int = Field(default=20, ge=2, le=1000)
    """Quorum queues: the broker dead-letters a message delivered this many times without an
    ack (a backstop under crash_limit: reconnects, failovers and crashes all count)."""
    ledger: Literal["auto", "off"] = "auto"
    """The fleet's ledger of handled ids, a stream per channel (`<speak queue>.handled`): the
    owner appends each id before its ack, a new owner reads it before it consumes, so that a
    message whose ack was lost never airs twice, on any worker. auto: where the broker has
    streams (RabbitMQ 3.9 or later)."""
    ledger_max_age_h: int = Field(default=168, ge=1, le=24 * 365)
    """Hours the ledger keeps an id (longer than a message may wait in the queue)."""
    ledger_max_mb: int = Field(default=20, ge=1, le=10_000)
    """Most megabytes the ledger keeps; past it, its oldest ids are dropped."""
    speak_queue: str = "avatarcast.speak"
    """Queue of `speak` messages (texts to say)."""
    control_queue: str = "avatarcast.control"
    """Queue of control messages (skip, clear, pause, resume)."""
    dead_letter_queue: str = "avatarcast.dead"
    """Where rejected messages land, with headers naming the reason and the source queue."""
    dead_letter_max_messages: int = Field(default=10_000, ge=1)
    """Most messages the dead-letter queue keeps; past it, the oldest are dropped (set when
    the queue is created: an existing queue keeps its arguments, see the README's Messages)."""
    dead_letter_max_mb: int = Field(default=100, ge=1)
    """Most megabytes of bodies the dead-letter queue keeps; past it, the oldest are dropped
    (as dead_letter_max_messages)."""
    events_exchange: str = "avatarcast.events"
    """Topic exchange for lifecycle events (accepted, on_air, finished, failed, ...), routing
    key = the event's name; `say --wait` follows them."""
    prefetch: int = Field(default=32, ge=2, le=1000)
    """Messages held unacked at once: the next utterance renders while one is on air, and an
    `interrupt` message is seen while this many wait before it."""
    reconnect_interval_s: float = Field(default=2.0, gt=0)
    """Seconds between attempts to reconnect to the broker."""
    dedupe_capacity: int = Field(default=10_000, ge=100)
    """Ids of handled messages remembered (in state_dir) to drop redeliveries."""
    crash_limit: int = Field(default=3, ge=1, le=100)
    """A message whose handling the process died in (crash, out of memory, kill) this many
    times is dead-lettered at its next delivery instead of being tried again."""
    heartbeat_s: int = Field(default=60, ge=1, le=600)
    """AMQP heartbeat: a connection silent this long is dead to the broker, which then hands
    its unacked messages to another consumer (channels use fleet.heartbeat_s)."""
    single_active_consumer: bool = False
    """Declare the speak and control queues single-active-consumer: one consumer gets
    messages at a time, in order (set for channels' queues)."""

    @field_validator("url")
    @classmethod
    def _amqp_url(cls, v: SecretStr) -> SecretStr:
        _check_amqp(v.get_secret_value())
        return v

    @field_validator("urls")
    @classmethod
    def _amqp_urls(cls, v: list[SecretStr]) -> list[SecretStr]:
        for u in v:
            _check_amqp(u.get_secret_value())
        return v


def _check_amqp(url: str) -> None:
    from .broker.nodes import NodeUrlError, split_hosts

    if not url.startswith(("amqp://", "amqps://")):
        raise ValueError("must start with amqp:// or amqps://")
    try:
        for node in split_hosts(url):
            _ = urlsplit(node).port  # (raises on a port that is not a number)
    except (NodeUrlError, ValueError):
        # (never the parser's words: they may quote the URL, whose password a `/` or `?` left
        # unescaped cuts into what it reads as a host and port)
        raise ValueError("not a URL a broker can be reached at: each host must be "
                         "host[:port] with a numeric port, hosts separated by commas; "
                         "escape / ? # @ in the password (%2F %3F %23 %40)") from None


class VideoSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    width: int = Field(default=1280, ge=64, le=3840)
    """Picture width in pixels; even."""
    height: int = Field(default=720, ge=64, le=2160)
    """Picture height in pixels; even."""
    fps: int = Field(default=30, ge=1, le=60)
    """Frames per second; audio.sample_rate must be a multiple of it."""
    bitrate_kbps: int = Field(default=2500, ge=100, le=50_000)
    """Constant video bitrate (x264), kbit/s."""
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium"
    ] = "veryfast"
    """x264 preset: faster ones use less CPU for a lower quality at the same bitrate."""
    keyframe_interval_s: float = Field(default=2.0, gt=0, le=10)
    """Seconds between keyframes (GOP length)."""

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (yuv420p needs even dimensions)")
        return v


class AudioSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    sample_rate: int = 48000
    """Output sample rate in Hz: 44100 or 48000."""
    bitrate_kbps: int = Field(default=128, ge=32, le=320)
    """AAC bitrate, kbit/s."""

    @field_validator("sample_rate")
    @classmethod
    def _aac_rate(cls, v: int) -> int:
        if v not in (44100, 48000):
            raise ValueError("must be 44100 or 48000")
        return v


class OutputSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    rtmp_urls: list[SecretStr] = Field(default_factory=list)
    """RTMP(S) URLs to stream to (JSON list). Each may carry a stream key; they are secrets
    and are redacted in every log line. With several outputs each has its own relay, retried
    on its own, so one failing server does not take the others down."""
    srt_urls: list[SecretStr] = Field(default_factory=list)
    """SRT URLs to stream to as MPEG-TS (JSON list, e.g. srt://host:9000?streamid=live;
    secrets: they may hold a passphrase)."""
    hls_dir: Path | None = None
    """Also write HLS here: index.m3u8 and 2 s segments, the last six kept (serve the folder
    over HTTP to watch it)."""
    record_path: Path | None = None
    """Also record the stream to this file (strftime fields expanded); unset: no recording."""
    record_segment_s: int = Field(default=0, ge=0)
    """Cut the recording into files of about this many seconds (at the next keyframe), named
    NAME.00000.EXT, NAME.00001.EXT, ...; 0: one file per encoder run."""
    record_keep_files: int = Field(default=0, ge=0)
    """Keep at most this many recording files, deleting the oldest (checked every few
    seconds; the one being written is never deleted); 0: no limit."""
    record_keep_mb: int = Field(default=0, ge=0)
    """Keep at most this many megabytes of recording files, deleting the oldest (as
    record_keep_files); 0: no limit. At the defaults a recording grows about 1.2 GB an hour."""
    min_free_mb: int = Field(default=500, ge=0)
    """Free space the recording's, the captions' and the state dir's disks keep: below it, a
    warning, /healthz names it (`disk_low`) and the recording pauses (with other outputs; the
    stream goes on) until there is room again; 0: not watched."""
    ffmpeg_path: str = "ffmpeg"
    """The FFmpeg executable."""
    queue_frames: int = Field(default=8, ge=2, le=120)
    """Frames buffered towards FFmpeg once it runs; more are dropped. (A new FFmpeg run, in
    its first 3 s, may have up to 1.5 s of frames waiting while it starts.)"""
    restart_backoff_min_s: float = Field(default=0.5, gt=0)
    """First wait before restarting a failed FFmpeg; it grows with each failed start."""
    restart_backoff_max_s: float = Field(default=10.0, gt=0)
    """Longest wait before restarting a failed FFmpeg; >= restart_backoff_min_s."""
    stable_after_s: float = Field(default=10.0, gt=0)
    """A run shorter than this counts as a failed start and grows the backoff."""

    @field_validator("rtmp_urls")
    @classmethod
    def _rtmp_scheme(cls, v: list[SecretStr]) -> list[SecretStr]:
        for url in v:
            if not url.get_secret_value().startswith(("rtmp://", "rtmps://")):
                raise ValueError("every URL must start with rtmp:// or rtmps://")
        return v

    @field_validator("srt_urls")
    @classmethod
    def _srt_scheme(cls, v: list[SecretStr]) -> list[SecretStr]:
        for url in v:
            if not url.get_secret_value().startswith("srt://"):
                raise ValueError("every URL must start with srt://")
        return v

    def destinations(self) -> list[str]:
        """Every output as its URL or path (secrets included: compare, never log)."""
        out = [u.get_secret_value() for u in (*self.rtmp_urls, *self.srt_urls)]
        return out + [str(p) for p in (self.hls_dir, self.record_path) if p is not None]


# NASA's public-domain astronaut portrait (shipped with scikit-image), inside the package so an
# installed wheel runs without a checkout.
DEFAULT_IDLE_SOURCE = Path(__file__).resolve().parent / "avatar" / "avatar.png"


class AvatarSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str | None = None
    """A prepared avatar (`avatarcast prepare --id ID`); without one, the idle source is used,
    prepared on the fly as `auto-<file stem>` when the animator needs a face."""
    idle_source: Path = DEFAULT_IDLE_SOURCE
    """Image, or a video played as a ping-pong loop, shown when no prepared avatar is set."""
    avatars_dir: Path = Path("models/avatars")
    """Where prepared avatars (versioned caches) are kept."""
    max_idle_frames: int = Field(default=600, ge=1, le=10_000)
    """Frames read at most from a video idle source."""
    max_side: int = Field(default=1920, ge=64, le=4096)
    """Cached frames are scaled down to this many pixels on their long side."""
    framing: Framing = "auto"
    """How the avatar fills the picture, decided once at prepare: `source` shows the source as
    it is (letterboxed to the output's aspect); `face` cuts a head-and-shoulders shot of the
    output's aspect around the face, the face (brow to chin) face_share of the height, one
    box for a whole video; `auto` is `face` for an image and `source` for a video (a video
    keeps its own framing). Where no face is needed (the still animator, alive motion off,
    no avatar.id), the idle source is shown as it is unless this is `face`. Changing it,
    face_share or the output's aspect prepares the avatar again."""
    face_share: float = Field(default=0.35, ge=0.15, le=0.5)
    """With face framing, the share of the picture's height the face takes from brow to
    chin (more where the source cannot give a box that large)."""
    keep_loaded: int = Field(default=3, ge=1, le=32)
    """Avatars kept loaded with their animator (the default's included) for messages that
    name an avatar and for switches; beyond it the least recently used is unloaded."""

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str | None) -> str | None:
        if v is not None and not AVATAR_ID_PATTERN.match(v):
            raise ValueError("use 1-64 letters, digits, '.', '_' or '-'")
        return v


class AliveSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    enabled: Literal["auto", "on", "off"] = "auto"
    """Blinks, head and body motion and gaze drawn on the avatar: `auto` for a still image
    (a video keeps its own motion), `on` for any source, `off` for none. About 5 ms a frame
    on one core at 720p (README, "The face is alive")."""
    seed: int = Field(default=1, ge=0)
    """The motion is the same for the same seed (tests, reproducible stills)."""
    blinks_per_minute: float = Field(default=17.0, ge=0.0, le=60.0)
    """Blinks a minute at rest (fewer while speaking, one at a pause or after a long
    sentence); 0: none."""
    motion: float = Field(default=1.0, ge=0.0, le=3.0)
    """Head motion, as a share of the default (a sway of about 1 % of the face's height
    and under a degree at rest, nods on accents when speaking); 0: a still head."""
    breaths_per_minute: float = Field(default=15.0, ge=0.0, le=30.0)
    """Breathing rate (each breath 20 % shorter or longer at random); 0: no breathing."""
    breathing: float = Field(default=1.0, ge=0.0, le=3.0)
    """How far the shoulders and chest rise, as a share of the default (2 % of the face's
    height)."""


class PlayoutSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    crossfade_frames: int = Field(default=4, ge=0, le=30)
    """Frames of crossfade where talking frames do not continue the idle cycle."""
    gap_ms: int = Field(default=400, ge=0, le=10_000)
    """Idle time between two utterances, ms."""
    lead_frames: int = Field(default=2, ge=1, le=60)
    """Frames between a segment being planned (its first speech synthesized) and its first frame
    on air: time for the animator to draw the first frame, so that talking continues the idle
    cycle. A frame drawn late airs at the next tick, crossfaded."""
    render_ahead: int = Field(default=1, ge=1, le=8)
    """Utterances rendered beyond the one on air."""
    min_buffer_ms: int = Field(default=1500, ge=0, le=60_000)
    """Audio an utterance must have before it airs while later sentences are still
    synthesized, ms."""
    render_buffer_mb: int = Field(default=128, ge=16, le=16_384)
    """Rendered frames held ahead of air, per utterance (the one on air and each rendered
    ahead): memory is bounded by this, never by the length of a text. At least a second."""

    def buffer_frames(self, video: VideoSettings) -> int:
        frame = video.width * video.height * 3 // 2  # yuv420p
        return max(video.fps, self.render_buffer_mb * 1024 * 1024 // frame)


# OpenAI's documented speech voices.
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova",
                 "onyx", "sage", "shimmer", "verse")


class SpeechSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    providers: list[SpeechProvider] = Field(default_factory=lambda: ["piper", "espeak"])  # type: ignore[arg-type]
    """Fallback chain of speech providers, tried in order (JSON list)."""
    piper_model: Path | None = None
    """Default piper voice (`.onnx`); unset: the bundled `en_US-joe-medium`."""
    piper_voices_dir: Path = Path("models/voices")
    """A message's `voice` names `<dir>/<voice>.onnx` here."""
    edge_voice: str = "en-US-GuyNeural"
    """Voice for the edge provider (Microsoft Edge online TTS)."""
    espeak_voice: str = "en-us"
    """Voice for the espeak provider."""
    espeak_path: str = "espeak-ng"
    """The espeak-ng executable."""
    retry_attempts: int = Field(default=2, ge=1, le=10)
    """Attempts per provider on retryable errors, before the next provider is tried."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a provider may take for each sentence before it counts as failed."""
    cache_dir: Path | None = None
    """Where piper voices patched to give phoneme timings are kept; state_dir/voices if unset."""
    openai_base_url: str = "https://api.openai.com/v1"
    """The OpenAI-compatible server of the `openai` provider (POST {base}/audio/speech)."""
    openai_api_key: SecretStr | None = None
    """Its API key (a secret), sent as a Bearer token; unset for a server that wants none."""
    openai_model: str = "gpt-4o-mini-tts"
    """The speech model asked for."""
    openai_voice: str = "alloy"
    """The voice when a message names none (a message's `voice` picks another)."""
    openai_voices: list[str] = Field(default_factory=lambda: list(OPENAI_VOICES))
    """The voices the server has (JSON list; OpenAI's by default): a message or `set` naming
    one of these (or openai_voice) goes to this provider."""
    openai_format: Literal["pcm", "wav"] = "pcm"
    """pcm: raw 16-bit mono at openai_sample_rate (OpenAI's is 24 kHz); wav: read from its
    header."""
    openai_sample_rate: int = Field(default=24_000, ge=8000, le=96_000)
    """The rate of the server's raw PCM."""
    normalize: bool = True
    """Bring every voice to `loudness_lufs` (each voice measured as it speaks; peaks kept
    under about -1 dBTP); off: each provider's own level."""
    loudness_lufs: float = Field(default=-18.0, ge=-36, le=-10)
    """The speech's loudness on air (EBU R128 integrated). Platforms normalize playback
    to about -14 (YouTube, Spotify) or -16 to -18 (talk, podcasts)."""

    @field_validator("providers")
    @classmethod
    def _non_empty(cls, v: list[SpeechProvider]) -> list[SpeechProvider]:
        if not v:
            raise ValueError("needs at least one provider")
        return v


class LLMSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    base_url: str | None = None
    """An OpenAI-compatible server (POST {base}/chat/completions, streamed) that answers `ask`
    messages; unset: asks fail with that reason."""
    api_key: SecretStr | None = None
    """Its API key (a secret), sent as a Bearer token."""
    model: str = "gpt-4o-mini"
    """The chat model asked for."""
    system: str = ("You are the host of a live stream. Answer in a few short, plain spoken "
                   "sentences, without lists or markup.")
    """Instructions sent with every question that brings none of its own."""
    max_tokens: int = Field(default=300, ge=16, le=4096)
    """The longest answer asked of the model, in tokens."""
    max_chars: int = Field(default=1500, ge=50, le=20_000)
    """Answers are cut after this many characters (what was said so far is kept)."""
    timeout_s: float = Field(default=60.0, gt=0, le=600)
    """Seconds the server may send no words, before its first or between two (keep-alives
    and empty pieces count as silence)."""
    answer_timeout_s: float = Field(default=180.0, gt=0, le=3600)
    """Seconds a whole answer may take; past it, what was said stands (none: it fails)."""


class FaceSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    animator: AnimatorName = "auto"
    """lite (CPU), musetalk (GPU), still, or remote (a face server, remote_url); auto:
    musetalk when a CUDA GPU and its weights are there, lite otherwise."""
    models_dir: Path = Path("models")
    """MuseTalk weights (`avatarcast models download`)."""
    device: Literal["auto", "cuda", "cpu"] = "auto"
    """Device MuseTalk runs on."""
    batch_size: int = Field(default=0, ge=0, le=64)
    """MuseTalk frames per UNet call; 0 picks it from free GPU memory."""
    fp16: bool = True
    """MuseTalk in half precision on CUDA."""
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """An animator silent for this long fails the utterance and gets a fresh thread."""
    remote_url: str | None = None
    """The face server of the remote animator (`avatarcast serve-face`), e.g.
    http://gpu-box:8090."""
    remote_timeout_s: float = Field(default=3.0, gt=0, le=60)
    """Seconds the face server may stay silent before the lite animator takes over; also the
    longest one frame may take to arrive whole (a server that trickles bytes is given up)."""
    server_max_width: int = Field(default=3840, ge=64, le=3840)
    """The widest output a face server (`avatarcast serve-face`) renders for; a wider request
    gets 400."""
    server_max_height: int = Field(default=2160, ge=64, le=2160)
    """The tallest output a face server renders for; a taller request gets 400."""
    server_max_avatars: int = Field(default=4, ge=1, le=64)
    """Avatars a face server keeps loaded (one per id and output size); past it, the one used
    least recently is let go and loaded again when asked for."""

    @model_validator(mode="after")
    def _remote_has_url(self) -> FaceSettings:
        if self.animator == "remote" and not self.remote_url:
            raise ValueError("animator remote needs face.remote_url (AVATARCAST_FACE__REMOTE_URL)")
        return self


class CaptionSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    burn_in: bool = False
    """Show the spoken words in the picture from the start: the scene's captions layer, a
    line above the ticker, word by word as spoken (`control scene --layer captions --show`
    or `--hide` switches it live)."""
    max_chars: int = Field(default=42, ge=12, le=120)
    """Characters per caption line."""
    vtt_path: Path | None = None
    """A WebVTT file of everything that aired (strftime fields expanded, one file per encoder
    run); unset: none."""
    transcript_path: Path | None = None
    """JSON lines with every aired message's words and phones on the stream's clock; unset:
    none."""
    file_max_mb: float = Field(default=100.0, gt=0)
    """A transcript or WebVTT file over this size is closed and a new one begun (the
    transcript's renamed to NAME.YYYYmmdd-HHMMSS.EXT, a WebVTT file's next named as
    recordings are)."""
    keep_files: int = Field(default=0, ge=0)
    """Keep at most this many transcript files, and as many WebVTT files, deleting the
    oldest; 0: no limit."""


class HealthSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    enabled: bool = True
    """Serve the HTTP port: /healthz, /metrics and the web console."""
    host: str = "127.0.0.1"
    """Address the HTTP port listens on. Anywhere but the loopback, the console needs a
    token."""
    port: int = Field(default=8080, ge=0, le=65535)
    """The HTTP port; 0 picks a free one."""
    console: bool = True
    """Serve the web console at / (a live preview, the queue, buttons that publish); in a channels
    worker, each channel's at /ch/ID/ and a list of them at /."""
    token: SecretStr | None = None
    """The console's access token (a secret): required by the console when the host is not
    the loopback; open it once as /?token=... (a cookie keeps it, a week). Empty: none."""
    preview_fps: int = Field(default=2, ge=1, le=10)
    """Frames per second of the console's preview (JPEG), while someone watches."""

    @field_validator("token", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v  # (compose passes an unset variable as "")


class FleetSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    capacity: int = Field(default=0, ge=0, le=1000)
    """Channels of the channels file this worker carries at most; 0: all of them. Workers
    that share a file share its channels: each is run by one of them at a time."""
    poll_s: float = Field(default=1.0, gt=0, le=60)
    """How often a worker with room tries to take a channel that nobody runs."""
    heartbeat_s: int = Field(default=5, ge=2, le=120)
    """AMQP heartbeat of the channels' connections: a worker that vanishes without closing
    them (a network partition, a frozen machine) loses its channels after 2 to 3 times this
    (the broker gives up after two silent checks). Below 5 s, RabbitMQ warns of connections
    dropped by a passing network hiccup."""
    fence_s: float = Field(default=3.0, gt=0, le=60)
    """A channel stops publishing its stream when the broker has not confirmed its lease for
    this long: before the broker can have given it to another worker (less than
    heartbeat_s)."""
    give_up_after: int = Field(default=3, ge=1, le=100)
    """A channel that fails this many times in a row on a worker (each run shorter than a
    minute) is handed over: the worker releases its lease for another worker to take."""
    give_up_s: float = Field(default=60.0, ge=0, le=86_400)
    """How long a worker that handed a channel over leaves it to the others before it takes
    it again (then only if none of them did)."""

    @model_validator(mode="after")
    def _fence_first(self) -> FleetSettings:
        if self.fence_s >= self.heartbeat_s:
            raise ValueError(f"fleet.fence_s ({self.fence_s:g}) must be less than "
                             f"fleet.heartbeat_s ({self.heartbeat_s}; 5 by default, 10 before "
                             "2026-12), so that a worker cut off from the broker stops before "
                             "another takes over")
        return self


class WebRTCSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    enabled: bool = True
    """Serve a WebRTC view of the program at /whep on the HTTP port (in a channels worker, each
    channel's at /ch/ID/whep) (WHEP, for a browser on the LAN: no TURN), under the console's
    access rule; needs aiortc. Costs nothing unwatched."""
    width: int = Field(default=640, ge=64, le=3840)
    """Width of the view in pixels (never above the stream's); the height keeps the aspect."""
    fps: int = Field(default=15, ge=1, le=60)
    """Frames per second of the view: the stream's rate divided by a whole number, about
    this."""
    max_viewers: int = Field(default=4, ge=1, le=32)
    """Browsers watching at once (each has encoders of its own: VP8 or H.264, and Opus); an
    offer past it gets 503."""
    max_offer_bytes: int = Field(default=64 * 1024, ge=4096, le=2**20)
    """The largest SDP offer taken (a browser's is a few KiB); a larger one gets 413."""
    max_media_sections: int = Field(default=4, ge=2, le=64)
    """The most media sections (m= lines) an offer may have (a WHEP player's has two: audio
    and video); more gets 400."""


class ShutdownSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    grace_s: float = Field(default=30.0, ge=0)
    """Seconds the utterance on air may take to finish at shutdown; it is requeued otherwise."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AVATARCAST_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        use_attribute_docstrings=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level of log lines written."""
    log_format: Literal["text", "json"] = "text"
    """text: for people; json: one JSON object per line (ts, level, logger, message, id)."""
    state_dir: Path = Path("var/state")
    """Where state kept across restarts lives (ids of handled messages, delivery attempts)."""
    channels_file: Path | None = None
    """A TOML file of channels (streams) this worker runs, each with its own queues, outputs,
    avatar, voice and picture; unset: one stream from these settings."""
    channel: str | None = Field(default=None, pattern=CHANNEL_ID_PATTERN.pattern)
    """Run only this channel of the channels file (each channel's settings carry its id)."""
    broker: BrokerSettings = BrokerSettings()
    """RabbitMQ."""
    video: VideoSettings = VideoSettings()
    """The stream's picture."""
    audio: AudioSettings = AudioSettings()
    """The stream's sound."""
    output: OutputSettings = OutputSettings()
    """Where the stream goes (FFmpeg)."""
    avatar: AvatarSettings = AvatarSettings()
    """The face on air."""
    alive: AliveSettings = AliveSettings()
    """The face alive: blinks, head and body motion, gaze."""
    playout: PlayoutSettings = PlayoutSettings()
    """Timing of what airs."""
    speech: SpeechSettings = SpeechSettings()
    """Text to speech."""
    llm: LLMSettings = LLMSettings()
    """The LLM that answers `ask` messages."""
    face: FaceSettings = FaceSettings()
    """Mouth animation."""
    captions: CaptionSettings = CaptionSettings()
    """Captions and transcripts."""
    health: HealthSettings = HealthSettings()
    """HTTP health endpoint."""
    webrtc: WebRTCSettings = WebRTCSettings()
    """The WebRTC view (WHEP) of the program."""
    shutdown: ShutdownSettings = ShutdownSettings()
    """Stopping."""
    fleet: FleetSettings = FleetSettings()
    """Workers sharing a channels file."""
    chat: ChatSettings = ChatSettings()
    """`avatarcast chat`: live chat answered on air."""
    scene: SceneSettings = SceneSettings()
    """The scene laid over the avatar: logo, lower third, ticker, clock, the AI label."""

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
