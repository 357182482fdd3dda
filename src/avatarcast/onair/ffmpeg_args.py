"""The FFmpeg command line for the live encoder, built with ffmpeg-python (no shell)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import ffmpeg

from ..settings import AudioSettings, OutputSettings, VideoSettings
from .reconnect import Address, rtmp_address


def record_file(pattern: Path) -> str:
    """A recording path for this encoder run: strftime fields in the pattern are expanded so a
    restart never overwrites the previous file."""
    path = Path(time.strftime(str(pattern)))
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{path.stem.rsplit('~', 1)[0]}~{n}{path.suffix}")
    return str(path)


def segment_files(pattern: Path) -> str:
    """This run's segment files, for FFmpeg's segment muxer: NAME.00000.EXT, NAME.00001.EXT,
    ... (strftime fields expanded at the run's start, and a ~N as record_file adds, so a
    restart never overwrites the previous run's)."""
    first = record_file(pattern.with_name(f"{pattern.stem}.00000{pattern.suffix}"))
    head, _, tail = first.rpartition(".00000")
    return head.replace("%", "%%") + ".%05d" + tail.replace("%", "%%")


def _record(pattern: Path, segment_s: int) -> Target:
    """The recording: one file per encoder run, or (`segment_s`) files of about that many
    seconds, cut at a keyframe, timestamps on the run's clock as captions have them."""
    fmt = "matroska" if pattern.suffix == ".mkv" else "flv"
    if segment_s <= 0:
        return Target("record", lambda: record_file(pattern), fmt,
                      () if fmt == "matroska" else ("-flvflags", "no_duration_filesize"))
    flv = ("-segment_format_options", "flvflags=no_duration_filesize") if fmt == "flv" else ()
    return Target("record", lambda: segment_files(pattern), "segment", (
        "-segment_time", str(segment_s), "-segment_format", fmt, *flv))


def log_line(line: str) -> tuple[bool, str]:
    """(is an error, text) of a line FFmpeg logs with `-loglevel level+...`."""
    level, _, text = line.partition("] ") if line.startswith("[") else ("", "", line)
    return level in ("[error", "[fatal", "[panic"), text


HLS_SEGMENT_S = 2
HLS_LIST_SIZE = 6


@dataclass(frozen=True)
class Target:
    """One output: where (expanded per encoder run for a recording), as which container,
    with which muxer options, and the TCP servers to probe before trying it again."""

    name: str  # for status and logs: never the URL (it may hold a key)
    where: Callable[[], str]
    fmt: str
    opts: tuple[str, ...] = ()
    servers: tuple[Address, ...] = ()


def _fixed(value: str) -> Callable[[], str]:
    return lambda: value


def _host(url: str, default_port: int) -> Address:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def targets(output: OutputSettings) -> list[Target]:
    """Every output: RTMP(S) and SRT URLs, an HLS directory, a recording."""
    found: list[Target] = []
    for i, secret in enumerate(output.rtmp_urls, 1):
        url = secret.get_secret_value()
        host, port = rtmp_address(url)
        found.append(Target(f"rtmp{i} ({host}:{port})", _fixed(url), "flv",
                            ("-flvflags", "no_duration_filesize"), ((host, port),)))
    for i, secret in enumerate(output.srt_urls, 1):
        url = secret.get_secret_value()
        host, port = _host(url, 0)
        # SRT runs over UDP: there is no TCP server to probe, the backoff alone paces it.
        found.append(Target(f"srt{i} ({host}:{port})", _fixed(url), "mpegts"))
    if output.hls_dir is not None:
        hls = output.hls_dir

        def playlist() -> str:
            hls.mkdir(parents=True, exist_ok=True)
            return str(hls / "index.m3u8")

        found.append(Target("hls", playlist, "hls", (
            "-hls_time", str(HLS_SEGMENT_S), "-hls_list_size", str(HLS_LIST_SIZE),
            "-hls_flags", "delete_segments+independent_segments",
            "-hls_segment_filename", str(hls / "segment-%05d.ts"))))
    if output.record_path is not None:
        found.append(_record(output.record_path, output.record_segment_s))
    if not found:
        raise ValueError("no output: set output.rtmp_urls, output.srt_urls, output.hls_dir "
                         "and/or output.record_path")
    return found


def relay_args(ffmpeg_path: str, target: Target) -> list[str]:
    """One output of the fan-out: the encoder's FLV in on stdin, copied out unchanged."""
    return [ffmpeg_path, "-hide_banner", "-nostats", "-loglevel", "level+warning",
            "-f", "flv", "-analyzeduration", "500000", "-i", "pipe:0",
            "-map", "0", "-c", "copy", "-f", target.fmt, *target.opts, target.where()]


def x264_options(video: VideoSettings) -> dict[str, object]:
    """The video encoder's output options: x264 at constant bitrate, a keyframe every
    `keyframe_interval_s`, no lookahead (zerolatency)."""
    gop = max(1, round(video.fps * video.keyframe_interval_s))
    rate = f"{video.bitrate_kbps}k"
    return {
        "c:v": "libx264",
        "preset": video.preset,
        "tune": "zerolatency",
        "pix_fmt": "yuv420p",
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": 0,
        "b:v": rate,
        "minrate": rate,
        "maxrate": rate,
        "bufsize": rate,
        "x264-params": "nal-hrd=cbr",
    }


def build_args(
    video: VideoSettings,
    audio: AudioSettings,
    output: OutputSettings,
    audio_fifo: str,
    target: Target | None,
) -> list[str]:
    """The encoder: to one output directly, or (`target` None) FLV on stdout for the
    fan-out."""
    raw = {"probesize": 32, "analyzeduration": 0, "thread_queue_size": 64}
    v_in = ffmpeg.input(
        "pipe:0", format="rawvideo", pix_fmt="yuv420p",
        s=f"{video.width}x{video.height}", r=video.fps, **raw,
    )
    # ch_layout, not ac: with a channel count only, FFmpeg warns that it guessed the layout.
    a_in = ffmpeg.input(audio_fifo, format="s16le", ar=audio.sample_rate, ch_layout="mono",
                        **raw)
    if target is None:
        target = Target("fan-out", lambda: "pipe:1", "flv", ("-flvflags", "no_duration_filesize"))
    where = target.where()
    opts: dict[str, object] = {
        "format": target.fmt,
        **x264_options(video),
        "c:a": "aac",
        "b:a": f"{audio.bitrate_kbps}k",
        "ar": audio.sample_rate,
        "ac": 2,
    }
    cmd = ffmpeg.output(v_in, a_in, where, **opts).get_args()
    cmd[-1:-1] = list(target.opts)  # the muxer's own options, just before the target
    # level+: each line says its level, so warnings are logged but only errors count as such.
    return [output.ffmpeg_path, "-hide_banner", "-nostats", "-loglevel", "level+warning", *cmd]
