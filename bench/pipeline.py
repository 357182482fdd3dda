"""The encoder's share of every cut: what FFmpeg, the RTMP server and a client add after the
daemon has written its last sound.

The daemon's own `Encoder` (the same FFmpeg command line, the same writer threads) publishes to
nginx-rtmp, fed at 30 fps by a loop standing in for the pacer: a grey picture, and a 440 Hz
tone that starts and stops at a tick. A decoding client (`AudioWatch`) times the first loud
10 ms after each start and the last loud 10 ms after each stop. No daemon, no speech, no
RabbitMQ: the figure is the floor under every skip, interrupt and time to air."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from avatarcast.media.frames import Frame
from avatarcast.onair.encoder import Encoder
from avatarcast.onair.tick import CUT_BURST, START_BURST
from avatarcast.settings import AudioSettings, OutputSettings, VideoSettings
from harness.services import NginxRtmp

from .air import stats
from .probes import AudioWatch
from .session import BITRATE_KBPS, FPS, PRESET, SIZES

RATE = 48000
EARLY = os.environ.get("AVATARCAST_BENCH_NO_EARLY_SILENCE") is None  # to compare without it
# As the pacer: a stop's first ticks and a start's go at once (to compare without them).
BURSTS = os.environ.get("AVATARCAST_BENCH_NO_BURSTS") is None
TONE_HZ = 440
LEVEL = 0.3  # of full scale


class _Feed:
    """Frame n at t0 + n/FPS, as the pacer does; returns the wall time each tick was written."""

    def __init__(self, encoder: Encoder, frame: Frame) -> None:
        self.encoder, self.frame = encoder, frame
        spf = RATE // FPS
        t = np.arange(spf) / RATE
        self.quiet = np.zeros(spf, np.int16)
        # 1600 samples are 14.67 periods: a tick boundary clicks a little, which is fine here.
        self.loud = (LEVEL * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        self.t0 = time.monotonic()
        self.n = 0

    def ticks(self, count: int, loud: bool, burst: int = 1) -> float:
        """`count` ticks of tone or silence, the first `burst` of them at once (the pacer's
        CUT_BURST and START_BURST); a quiet stretch is known to be quiet ahead, as the program
        knows the fade and the gap after a cut (Encoder.submit's quiet_after)."""
        first = 0.0
        spf = len(self.quiet)
        start = self.n
        for i in range(count):
            due = start if BURSTS and self.n < start + burst else self.n
            target = self.t0 + due / FPS
            while (wait := target - time.monotonic()) > 0:
                time.sleep(min(wait, 0.005))
            if loud:
                self.encoder.submit(self.frame, self.loud)
            else:
                self.encoder.submit(self.frame, self.quiet,
                                    quiet_after=(count - 1 - i) * spf if EARLY else 0)
            self.n += 1
            if i == 0:
                first = time.time()
        return first


def measure(work: Path, size: str, cuts: int) -> dict[str, Any]:
    width, height = SIZES[size]
    server = NginxRtmp(work / f"nginx-{size}")
    server.start()
    url = server.url("pipeline")
    encoder = Encoder(
        VideoSettings(width=width, height=height, fps=FPS, preset=PRESET,
                      bitrate_kbps=BITRATE_KBPS[size]),
        AudioSettings(sample_rate=RATE),
        OutputSettings(rtmp_urls=[SecretStr(url)]),
    )
    encoder.start()
    onset, cut = [], []
    try:
        if not encoder.wait_up(15):
            raise RuntimeError(f"the encoder did not start at {size}: {encoder.last_error}")
        feed = _Feed(encoder, np.full((height * 3 // 2, width), 128, np.uint8))
        feed.ticks(FPS, loud=False)
        client = AudioWatch(url)
        try:
            feed.ticks(5 * FPS, loud=False)  # the client's start-up (stream probing)
            for _ in range(cuts):
                feed.ticks(random.randint(20, 40), loud=False)  # random phase against AAC
                started = feed.ticks(random.randint(20, 30), loud=True, burst=START_BURST)
                stopped = feed.ticks(25, loud=False, burst=CUT_BURST)
                first = client.first_loud_after(started - 0.5, 2)
                last = client.last_loud_before_quiet(stopped - 0.3, 0.2, 2)
                if first is not None:
                    onset.append(first - started)
                if last is not None:
                    cut.append(max(0.0, last - stopped))
        finally:
            client.close()
    finally:
        encoder.close()
        server.stop()
    return {"onset_to_first_sound": stats(onset), "cut_to_last_sound": stats(cut),
            "cut_ms": sorted(round(x * 1000, 1) for x in cut)}


def run(work: Path, cuts: int) -> dict[str, Any]:
    return {size: measure(work, size, cuts) for size in SIZES}
