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


def _escape_tee(target: str) -> str:
    # The tee muxer splits on '|' and reads options in '[...]'; escape both in targets.
    for ch in ("\\", "|", "[", "]"):
        target = target.replace(ch, "\\" + ch)
    return target


def output_target(urls: list[str], record: str | None) -> tuple[str, str]:
    """(format, target): FLV to one URL, or the tee muxer when there are several outputs."""
    targets = [(u, "flv", True) for u in urls]
    if record:
        fmt = "matroska" if record.endswith(".mkv") else "flv"
        targets.append((record, fmt, False))
    if not targets:
        raise ValueError("no output: set output.rtmp_urls and/or output.record_path")
    if len(targets) == 1:
        return targets[0][1], targets[0][0]
    parts = []
    for target, fmt, is_stream in targets:
        opts = f"f={fmt}:onfail=ignore" if is_stream else f"f={fmt}"
        parts.append(f"[{opts}]{_escape_tee(target)}")
    return "tee", "|".join(parts)


def build_args(
    video: VideoSettings,
    audio: AudioSettings,
    output: OutputSettings,
    audio_fifo: str,
    record: str | None,
) -> list[str]:
    raw = {"probesize": 32, "analyzeduration": 0, "thread_queue_size": 64}
    v_in = ffmpeg.input(
        "pipe:0", format="rawvideo", pix_fmt="yuv420p",
        s=f"{video.width}x{video.height}", r=video.fps, **raw,
    )
    # ch_layout, not ac: with a channel count only, FFmpeg warns that it guessed the layout.
    a_in = ffmpeg.input(audio_fifo, format="s16le", ar=audio.sample_rate, ch_layout="mono",
                        **raw)
    fmt, target = output_target([u.get_secret_value() for u in output.rtmp_urls], record)
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
    if fmt == "tee":
        del opts["flvflags"]
    cmd = ffmpeg.output(v_in, a_in, target, **opts).get_args()
    # level+: each line says its level, so warnings are logged but only errors count as such.
    return [output.ffmpeg_path, "-hide_banner", "-nostats", "-loglevel", "level+warning", *cmd]
