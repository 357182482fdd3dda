"""What a channel says about itself: its status (/healthz, the console), its live figures
(/metrics), read from the parts when asked, and how many messages wait in RabbitMQ (polled).
Owned by the event loop; the figures written by the pacer thread are read as they are at that
moment."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from ..avatar.alive.stage import Enliven
from ..avatar.face.looks import Looks
from ..broker.consumer import Consumer
from ..broker.events import EventPublisher
from ..infra.diskwatch import DiskWatch
from ..onair.encoder import Encoder
from ..onair.meter import ProgrammeMeter
from ..onair.pacer import Pacer
from ..onair.program import Program
from ..onair.state import StateMachine
from ..playout.scene.compose import Compositor
from ..playout.scene.mix import MusicMix
from ..playout.scheduler import Scheduler
from ..speech.chain import Speech
from ..web.metrics import Snapshot

QUEUE_POLL_S = 5.0


class QueueDepth:
    """How many messages wait in RabbitMQ's speak queue, for /metrics (a passive declare
    every QUEUE_POLL_S; None while the broker cannot be asked)."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self.ready: int | None = None

    async def run(self) -> None:
        while True:
            self.ready = await self._consumer.queue_depth()
            await asyncio.sleep(QUEUE_POLL_S)


@dataclass(frozen=True)
class Figures:
    """The parts a channel's status and live figures are read from."""

    channel: str | None  # its id, in a worker
    machine: StateMachine
    program: Program
    pacer: Pacer
    scheduler: Scheduler
    events: EventPublisher
    consumer: Consumer | None
    encoder: Encoder | None
    depth: QueueDepth | None
    speech: Speech
    looks: Looks
    disk: DiskWatch | None = None
    alive: Enliven | None = None
    meter: ProgrammeMeter | None = None
    music: MusicMix | None = None
    scene: Compositor | None = None

    @property
    def motion(self) -> str:
        """The face's motion on air: "on" (the default avatar has it), "off", or why it
        stopped ("failed: ..."; the picture airs unmoved)."""
        if self.alive is not None and self.alive.failed is not None:
            return f"failed: {self.alive.failed}"
        return "on" if self.looks.default.idle.rig is not None else "off"

    def music_status(self) -> dict[str, Any] | None:
        """The scene's music bed: whether it plays, what, at what gain now (ducked under
        speech), why nothing plays if nothing can; None without a bed."""
        m = self.music
        if m is None:
            return None
        return {"playing": m.playing, "muted": m.muted, "track": m.bed.now_playing,
                "gain_db": round(20 * math.log10(m.gain), 1) if m.gain > 0 else None,
                "problem": m.bed.problem or (f"failed: {m.failed}" if m.failed else None),
                "underruns": m.bed.underruns}

    @property
    def frames_late(self) -> int:
        return self.pacer.ticks_late + self.program.frames_late

    def snapshot(self) -> Snapshot:
        p, e, c = self.pacer, self.encoder, self.consumer
        return Snapshot(
            state=self.machine.state.value, frames_sent=p.frames_sent,
            frames_late=self.frames_late, frames_held=self.program.frames_late,
            frames_dropped=p.frames_dropped, encoder_alive=e is not None and e.alive,
            encoder_restarts=e.restarts if e is not None else 0,
            encoder_uptime_s=e.uptime_s if e is not None else 0.0,
            encoder_pid=e.pid if e is not None else None,
            broker_connected=c is not None and c.connected, backlog=self.scheduler.inflight,
            queue_ready=self.depth.ready if self.depth is not None else None,
            dead_lettered=c.dead_lettered if c is not None else 0,
            events_dropped=self.events.dropped,
            outputs_up={o["name"]: bool(o["live"]) for o in self.outputs()},
            loudness=self.meter.figures() if self.meter is not None else {},
        )

    def outputs(self) -> list[dict[str, Any]]:
        return self.encoder.outputs() if self.encoder is not None else []

    def status(self, *, last_error: str | None, started_at: float,
               failed: str | None = None) -> dict[str, Any]:
        """The daemon's status: 200 on /healthz when `encoder_alive` and `broker_connected`
        and nothing `failed` (a part it depends on broke: it is stopping to be restarted)."""
        e, c, sch, looks = self.encoder, self.consumer, self.scheduler, self.looks
        return {
            "channel": self.channel,
            "state": self.machine.state.value,
            "encoder_alive": e is not None and e.alive,
            "encoder_restarts": e.restarts if e is not None else 0,
            "outputs": self.outputs(),
            "broker_connected": c is not None and c.connected,
            "frames_sent": self.pacer.frames_sent,
            "frames_dropped": self.pacer.frames_dropped,
            "frames_late": self.frames_late,
            # Of those, frames held (with silence) because the animator fell behind air.
            "frames_held": self.program.frames_late,
            "paused": sch.paused,
            "queued": sch.inflight,
            "on_air": on_air.id if (on_air := self.program.on_air) is not None else None,
            "rendering": sch.rendering_status(),
            "dead_lettered": c.dead_lettered if c is not None else 0,
            "speech_providers": self.speech.providers,
            "speech_ready": sch.speech_ready.is_set(),
            "animator": looks.default.animator,
            "avatar": looks.avatar_name(looks.default),
            "voice": self.speech.voice,
            "avatars_loaded": looks.loaded,
            "motion": self.motion,
            "motion_ms_per_frame": self.alive.ms_per_frame if self.alive is not None else None,
            "loudness": self.meter.figures() if self.meter is not None else None,
            "music": self.music_status(),
            "scene": self.scene.status() if self.scene is not None else None,
            "failed": failed,
            # A disk short of space (the recording paused): named, the stream still healthy.
            "disk_low": self.disk.state if self.disk is not None else None,
            "last_error": last_error or (e.last_error if e is not None else None),
            "uptime_s": round(time.time() - started_at, 1),
            "recent": list(sch.history),
        }
