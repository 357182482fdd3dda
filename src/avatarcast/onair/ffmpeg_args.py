"""The FFmpeg command line for the live encoder, built with ffmpeg-python (no shell)."""

from __future__ import annotations

import time
from pathlib import Path

import ffmpeg

from ..settings import AudioSettings, OutputSettings, VideoSettings


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


def log_line(line: str) -> tuple[bool, str]:
    """(is an error, text) of a line FFmpeg logs with `-loglevel level+...`."""
    level, _, text = line.partition("] ") if line.startswith("[") else ("", "", line)
    return level in ("[error", "[fatal", "[panic"), text


def targets(urls: list[str], record: Path | None) -> list[tuple[str, str]]:
    """(target, format) of every output; a record path is expanded per run by the caller."""
    found = [(u, "flv") for u in urls]
    if record is not None:
        found.append((str(record), "matroska" if record.suffix == ".mkv" else "flv"))
    if not found:
        raise ValueError("no output: set output.rtmp_urls and/or output.record_path")
    return found


def relay_args(ffmpeg_path: str, target: str, fmt: str) -> list[str]:
    """One output of the fan-out: the encoder's FLV in on stdin, copied out unchanged."""
    out = ["-f", fmt, "-flvflags", "no_duration_filesize"] if fmt == "flv" else ["-f", fmt]
    return [ffmpeg_path, "-hide_banner", "-nostats", "-loglevel", "level+warning",
            "-f", "flv", "-analyzeduration", "500000", "-i", "pipe:0",
            "-map", "0", "-c", "copy", *out, target]


def build_args(
    video: VideoSettings,
    audio: AudioSettings,
    output: OutputSettings,
    audio_fifo: str,
    record: str | None,
    *,
    to_stdout: bool = False,
) -> list[str]:
    """The encoder: one output directly, or FLV on stdout for the fan-out (`to_stdout`)."""
    raw = {"probesize": 32, "analyzeduration": 0, "thread_queue_size": 64}
    v_in = ffmpeg.input(
        "pipe:0", format="rawvideo", pix_fmt="yuv420p",
        s=f"{video.width}x{video.height}", r=video.fps, **raw,
    )
    # ch_layout, not ac: with a channel count only, FFmpeg warns that it guessed the layout.
    a_in = ffmpeg.input(audio_fifo, format="s16le", ar=audio.sample_rate, ch_layout="mono",
                        **raw)
    if to_stdout:
        fmt, target = "flv", "pipe:1"
    else:
        urls = [u.get_secret_value() for u in output.rtmp_urls]
        ((target, fmt),) = targets(urls, Path(record) if record else None)
    gop = max(1, round(video.fps * video.keyframe_interval_s))
    rate = f"{video.bitrate_kbps}k"
    opts: dict[str, object] = {
        "format": fmt,
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
        "c:a": "aac",
        "b:a": f"{audio.bitrate_kbps}k",
        "ar": audio.sample_rate,
        "ac": 2,
        "flvflags": "no_duration_filesize",
    }
    if fmt != "flv":
        del opts["flvflags"]
    cmd = ffmpeg.output(v_in, a_in, target, **opts).get_args()
    # level+: each line says its level, so warnings are logged but only errors count as such.
    return [output.ffmpeg_path, "-hide_banner", "-nostats", "-loglevel", "level+warning", *cmd]
