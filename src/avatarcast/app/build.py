"""The composition root of one channel: every part built in one order, each given in its
constructor what it needs, nothing started (the daemon starts them, tests start what they
use). No part built here refers to one built after it, and nothing here is on the data path:
a message's ack goes from the encoder's writer thread to the program, to its subscriber the
scheduler, which hops to its event loop and settles it with the broker.

    position, machine, program          the stream's clock and what airs each tick
    lifecycle, events, llm, speech      a message's events; what speaks
    consumer (the broker)               RabbitMQ in; what settles a message
    scheduler                           subscribes to the program's outcomes
    encoder (the frame sink)            FFmpeg; tells the program when it is up
    parts (console, WebRTC view)        the pacer's taps, served on the HTTP port
    pacer                               the clock's thread: program -> encoder
    metrics, queue depth                read the parts when scraped
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..avatar.alive.stage import Enliven
from ..avatar.face.looks import Looks
from ..broker.attempts import Attempts
from ..broker.consumer import Consumer
from ..broker.dedupe import HandledIds
from ..broker.events import EventPublisher
from ..infra.diskwatch import DiskWatch
from ..infra.errors import UserError
from ..infra.retention import Retention
from ..infra.tasks import Tasks
from ..media.audio import Pcm
from ..media.frames import Frame
from ..onair.clock import FrameClock, StreamPosition
from ..onair.encoder import Encoder
from ..onair.meter import ProgrammeMeter
from ..onair.pacer import FrameSink, Pacer
from ..onair.program import Program
from ..onair.state import StateMachine
from ..onair.tick import TickOutput
from ..playout.lifecycle import Lifecycle
from ..playout.scene.compose import Compositor
from ..playout.scene.mix import MusicMix
from ..playout.scene.music import RATE as MUSIC_RATE
from ..playout.scene.music import MusicBed
from ..playout.scene.spec import Background, SceneError, load_scene
from ..playout.scene.text import FontError
from ..playout.scheduler import Scheduler
from ..playout.settle import Broker
from ..settings import Settings
from ..speech.chain import Speech, make_providers
from ..speech.llm.chat import ChatClient
from ..web.console.access import guarded
from ..web.console.preview import PreviewTap
from ..web.console.routes import Console
from ..web.metrics import Metrics
from ..web.parts import Part
from ..web.webrtc.view import open_whep
from .status import Figures, QueueDepth

log = logging.getLogger(__name__)

Tap = Callable[[int, Frame, Pcm], None]


@dataclass(eq=False)
class Channel:
    """One channel's parts. `consumer` and `encoder` are the real RabbitMQ and FFmpeg ends;
    a test that brings its own broker or frame sink has None there."""

    settings: Settings
    looks: Looks
    tasks: Tasks
    speech: Speech
    handled: HandledIds
    attempts: Attempts
    position: StreamPosition
    machine: StateMachine
    program: Program
    lifecycle: Lifecycle
    events: EventPublisher
    llm: ChatClient | None
    broker: Broker
    scheduler: Scheduler
    sink: FrameSink
    pacer: Pacer
    figures: Figures
    metrics: Metrics
    consumer: Consumer | None = None
    encoder: Encoder | None = None
    depth: QueueDepth | None = None
    parts: dict[str, Part] = field(default_factory=dict)
    music: MusicMix | None = None
    disk: DiskWatch | None = None


def build(
    settings: Settings,
    *,
    looks: Looks,
    tasks: Tasks,
    status: Callable[[], dict[str, Any]],
    fence: Callable[[], bool] | None = None,
    where: str | None = None,
    speech: Speech | None = None,
    broker: Broker | None = None,
    sink: FrameSink | None = None,
) -> Channel:
    """Build a channel on `looks` (started: its default avatar's idle cycle airs between
    segments). `status` is the channel's status for its console; `fence`, a fleet worker's
    lease check; `where` the path its web parts are served at (None: none served). `speech`,
    `broker` and `sink` replace the configured voices, RabbitMQ and FFmpeg (tests)."""
    s = settings
    position = StreamPosition()
    machine = StateMachine()
    cut = threading.Event()  # a cut commanded: the pacer sends its tick at once
    program = Program(
        looks.default.idle, fps=s.video.fps, spf=s.audio.sample_rate // s.video.fps,
        crossfade_frames=s.playout.crossfade_frames,
        gap_frames=s.playout.gap_ms * s.video.fps // 1000,
        lead_frames=s.playout.lead_frames, machine=machine, on_cut=cut.set,
    )
    lifecycle = Lifecycle(s.video.fps, position.now)
    events = EventPublisher(s.broker, s.channel)
    lifecycle.subscribe(events.send)
    if speech is None:
        speech = Speech(make_providers(s.speech, s.output.ffmpeg_path,
                                       s.speech.cache_dir or s.state_dir / "voices"),
                        s.speech, s.audio.sample_rate)
    llm = ChatClient(s.llm, attempts=s.speech.retry_attempts) if s.llm.base_url else None
    handled = HandledIds(s.state_dir / "handled-ids.log", s.broker.dedupe_capacity)
    handled.load()
    attempts = Attempts(s.state_dir / "attempts.json")
    attempts.load()
    def rejected(msg_id: str, reason: str) -> None:
        """Dead-lettered before it was understood (a bad body, the wrong queue)."""
        lifecycle.emit("failed", msg_id, reason=reason)

    consumer = None
    if broker is None:
        broker = consumer = Consumer(s.broker, on_rejected=rejected, handled=handled)
    scene = _scene(s)
    scheduler = Scheduler(
        program=program, speech=speech, looks=looks, broker=broker, handled=handled,
        attempts=attempts, crash_limit=s.broker.crash_limit, playout=s.playout,
        buffer_frames=s.playout.buffer_frames(s.video), sample_rate=s.audio.sample_rate,
        tasks=tasks, lifecycle=lifecycle, captions=s.captions, llm=llm, scene=scene,
    )
    encoder = None
    if sink is None:
        sink = encoder = Encoder(s.video, s.audio, s.output, on_state=program.encoder_up)
    parts: dict[str, Part] = {}
    taps: list[Tap] = []
    whep = None
    if where is not None:
        if (console := _console(s, status, where)) is not None:
            parts["console"], preview = console
            taps.append(preview.offer)
        if (whep := open_whep(s, asyncio.get_running_loop(), where)) is not None:
            parts["whep"] = whep
            taps.append(whep.tap)
    meter = ProgrammeMeter(s.audio.sample_rate)
    taps.append(meter.tap)
    enliven = Enliven(s.alive, s.video.fps, lambda: machine.state)
    stage = _then(enliven, scene)
    if (music := _music(s, scene)) is not None:
        stage = _then(stage, music)
    pacer = Pacer(FrameClock(s.video.fps), program, sink, position=position, wake=cut,
                  fence=fence, on_first_frame=scheduler.segment_on_air, taps=taps,
                  stage=stage)
    depth = QueueDepth(consumer) if consumer is not None else None
    disk = _disk_watch(s, encoder)
    figures = Figures(channel=s.channel, machine=machine, program=program, pacer=pacer,
                      scheduler=scheduler, events=events, consumer=consumer, encoder=encoder,
                      depth=depth, speech=speech, looks=looks, disk=disk, alive=enliven,
                      meter=meter, music=music, scene=scene)
    metrics = Metrics(figures.snapshot)
    lifecycle.subscribe(metrics.observe)
    if whep is not None:
        whep.register(metrics.registry)
    return Channel(
        settings=s, looks=looks, tasks=tasks, speech=speech, handled=handled,
        attempts=attempts, position=position, machine=machine, program=program,
        lifecycle=lifecycle, events=events, llm=llm, broker=broker, scheduler=scheduler,
        sink=sink, pacer=pacer, figures=figures, metrics=metrics, consumer=consumer,
        encoder=encoder, depth=depth, parts=parts, disk=disk, music=music,
    )


def _disk_watch(s: Settings, encoder: Encoder | None) -> DiskWatch:
    """The free space of every disk the channel writes to, and its files' retention; short of
    space, the recording pauses."""
    o, c = s.output, s.captions
    dirs = {"state dir": s.state_dir}
    retentions = []
    if o.record_path is not None:
        dirs["recording"] = o.record_path.parent
        retentions.append(Retention(o.record_path, o.record_keep_files,
                                    o.record_keep_mb * 1_000_000))
    for what, path in (("transcript", c.transcript_path), ("captions", c.vtt_path)):
        if path is not None:
            dirs[what] = path.parent
            retentions.append(Retention(path, c.keep_files))
    return DiskWatch(dirs, o.min_free_mb, retentions,
                     encoder.pause_recording if encoder is not None else lambda low: None)


def _console(s: Settings, status: Callable[[], dict[str, Any]],
             where: str) -> tuple[Console, PreviewTap] | None:
    """The web console and the preview tap that feeds it, where its settings and access rule
    allow (a line says why it is off)."""
    h = s.health
    if not h.console:
        return None
    serve, token = guarded(h, "web console")
    if not serve:
        return None
    preview = PreviewTap(h.preview_fps, s.video.fps, s.video.height)
    log.info("web console at %s on the HTTP port%s", where,
             " (token required)" if token else "")
    return Console(broker=s.broker, status=status, preview=preview, token=token), preview


def _scene(s: Settings) -> Compositor:
    """The scene laid over the picture (the AI label at least, unless turned off; layers may
    be made live); a scene file that cannot be used stops the start with the reason."""
    try:
        scene, base = load_scene(s.scene)
        return Compositor(scene, base, s.video.width, s.video.height, s.video.fps,
                          captions=s.captions.burn_in)
    except (SceneError, FontError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:  # a logo that is not an image
        raise UserError(f"scene: {exc}") from None


def scene_background(s: Settings) -> Background | None:
    """The background the scene file asks for, if any (the avatars are loaded over it); a
    scene file that cannot be used stops the start with the reason."""
    try:
        return load_scene(s.scene)[0].background
    except SceneError as exc:
        raise UserError(str(exc)) from None


def _music(s: Settings, scene: Compositor) -> MusicMix | None:
    """The scene's music bed, mixed under the programme (its feeder started), or None."""
    spec = scene.scene.music
    if spec is None:
        return None
    if s.audio.sample_rate != MUSIC_RATE:
        raise UserError(f"scene: the music bed plays at {MUSIC_RATE} Hz; "
                        f"audio.sample_rate is {s.audio.sample_rate}")
    mix = MusicMix(MusicBed(spec), spec, s.video.fps, s.audio.sample_rate)
    scene.music = mix
    return mix


def _then(first: Callable[[int, TickOutput], None],
          then: Callable[[int, TickOutput], None]) -> Callable[[int, TickOutput], None]:
    def stage(n: int, out: TickOutput) -> None:
        first(n, out)
        then(n, out)

    return stage
