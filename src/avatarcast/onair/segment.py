"""A speech segment: per-frame audio and the talking frames rendered for it, filled by the
renderer while the program airs it.

Each field has one writer, through a method that says which thread calls it: the renderer
(event loop) appends and seals; the program (pacer thread) starts it; the pacer places its
frames on the encoder's run; its outcome is set once, by the program or by the encoder's
receipt (a writer thread), whichever comes first."""

from __future__ import annotations

import enum
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..media.audio import Pcm
from ..media.cues import Cue
from ..media.frames import Frame
from ..media.idle import IdleCycle


class Outcome(enum.Enum):
    """What became of a segment; what it means for its message is playout/settle.py's table."""

    AIRED = "aired"  # every frame reached the encoder
    SKIPPED = "skipped"
    CLEARED = "cleared"
    INTERRUPTED = "interrupted"
    FAILED = "failed"  # rendering failed; the message is dead-lettered
    REQUEUED = "requeued"  # shutdown grace ran out; RabbitMQ will redeliver it
    # Cut by an encoder outage: its first frames are gone, so it is rendered and aired again.
    RETRY = "retry"


T = TypeVar("T")


class Window(Generic[T]):
    """A sequence that the renderer appends to (event loop) and the program reads once, in
    order, dropping what is behind it (pacer thread): it holds what is buffered, never the
    whole utterance. Indices stay absolute; `len` counts everything ever appended."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._base = 0  # index of the first item still held
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return self._base + len(self._items)

    def __getitem__(self, k: int) -> T:
        with self._lock:
            if k < self._base:
                raise IndexError(f"item {k} was dropped (held from {self._base})")
            return self._items[k - self._base]

    def append(self, item: T) -> None:
        with self._lock:
            self._items.append(item)

    def extend(self, items: Iterable[T]) -> None:
        with self._lock:
            self._items.extend(items)

    @property
    def held(self) -> int:
        return len(self._items)

    def drop_before(self, k: int) -> None:
        with self._lock:
            while self._base < k and self._items:
                self._items.popleft()
                self._base += 1

    def clear(self) -> None:
        with self._lock:
            self._base += len(self._items)
            self._items.clear()


START_CUSHION_DIV = 10  # frames rendered before an unfinished segment airs: fps / this


@dataclass(eq=False)
class Segment:
    id: str
    planned_start: int  # tick the frames were rendered for: frame k shows cycle(planned+k)
    tag: Any = None  # the owner's handle (the delivery to ack)
    # Its words as they are spoken (playout/captions/track.py), for the scene's captions.
    captions: Any = None
    # The idle cycle (avatar) its frames were rendered for; None: the program's default.
    idle: IdleCycle | None = None
    # How fast its frames are rendered (frames a second), for `ready`; None: fast enough.
    render_fps: Callable[[], float] | None = None
    # time.monotonic() when its frames began to be rendered: how fast they come now, on a
    # machine that may be busier than when render_fps was measured.
    rendering_since: float | None = None
    audio: Window[Pcm] = field(default_factory=Window)
    frames: Window[Frame] = field(default_factory=Window)
    # What the speech asks of the face besides its mouth, per frame (nods, brows, blinks);
    # added with the audio, possibly shorter (a frame without one asks for nothing).
    cues: Window[Cue] = field(default_factory=Window)
    sealed: bool = False
    # All its audio is in `audio` (the speech ended), though frames may still be rendering:
    # nothing more can arrive late, so it need not wait for `min_unsealed`.
    heard_all: bool = False
    # All the audio of the text known so far is in `audio`, and more text is awaited (an
    # answer whose model is still thinking): what is known airs now, without `min_unsealed`
    # (the wait is the model's, a pause between sentences, not a hole in a sentence).
    waiting_for_text: bool = False
    urgent: bool = False  # an interrupting message's: may start while interrupts are pending
    # An unsealed segment waits for this much audio, so a long second sentence still being
    # synthesized cannot leave a hole in the middle of the speech.
    min_unsealed: int = 0
    # Rendered frames held ahead of air at most; the renderer waits for room beyond it.
    max_buffered: int = 1 << 30
    started_at: int | None = None  # tick of the first frame on air
    ended_at: int | None = None
    # Where it landed in the encoder's output: (run, first frame, last frame) of that run.
    stream_run: int | None = None
    stream_first: int | None = None
    stream_last: int | None = None
    aired_wall: float | None = None  # time.time() when its first frame went to the encoder
    # time.time() when it ended: its cut's tick (a skip, an interrupt), or its last frame
    # written to the encoder.
    ended_wall: float | None = None
    outcome: Outcome | None = None
    _done: threading.Event = field(default_factory=threading.Event)

    @property
    def available(self) -> int:
        """Frames that can air now: both audio and picture are there."""
        return min(len(self.audio), len(self.frames))

    @property
    def total(self) -> int | None:
        return len(self.audio) if self.sealed else None

    def ready(self, render_fps: float, fps: int) -> bool:
        """Will rendering stay ahead of air for the rest of the segment if it starts now?"""
        rendered = self.available
        if rendered == 0:
            return False
        known = len(self.audio)
        if not (self.sealed or self.heard_all or self.waiting_for_text) and \
                known < self.min_unsealed:
            return False
        if rendered >= known:
            return True
        if rendered < min(known, fps // START_CUSHION_DIV):
            # A few frames in hand before the first airs: a stall of the animator (a burst of
            # texts on a busy machine) then does not hold the picture at once.
            return False
        if self.rendering_since is not None:
            # Its own pace so far (the first frames carry the start-up: on the safe side).
            elapsed = time.monotonic() - self.rendering_since
            render_fps = min(render_fps, rendered / max(elapsed, 1e-3))
        if render_fps >= fps:
            return True
        if self.frames.held >= self.max_buffered:
            # The buffer is full: waiting longer cannot help. A renderer slower than real time
            # may then hold the picture for a moment in the middle of a long text.
            return True
        # Frame k is needed k/fps after the start and rendered (k - rendered + 1)/render_fps
        # from now; the last frame is the tightest.
        needed = known - render_fps * (known - 1) / fps
        return rendered >= math.ceil(needed)

    # -- the renderer's (event loop) --------------------------------------------------------

    def add_audio(self, audio: Iterable[Pcm], *, heard_all: bool = False) -> None:
        """Per-frame audio; `heard_all`: the speech ended, its audio is complete before its
        frames are."""
        self.audio.extend(audio)
        self.heard_all = heard_all

    def add_cues(self, cues: Iterable[Cue]) -> None:
        """Per-frame cues, following the audio's frames (added before them or with them)."""
        self.cues.extend(cues)

    def add_frames(self, frames: Iterable[Frame]) -> None:
        self.frames.extend(frames)

    def seal(self) -> None:
        """Nothing more will be added: its length is known."""
        self.sealed = True

    # -- the program's and the pacer's (pacer thread) ---------------------------------------

    def begin(self, tick: int) -> None:
        """Its first frame airs at this tick."""
        self.started_at = tick

    def placed(self, run: int, frame: int) -> bool:
        """Its next frame was taken by the encoder as frame `frame` of run `run`; True for its
        first frame in that run (the moment it went on air)."""
        first = self.stream_first is None or self.stream_run != run
        if first:
            self.stream_run, self.stream_first = run, frame
            self.aired_wall = time.time()
        self.stream_last = frame
        return first

    # -- its outcome (pacer or encoder writer thread) -----------------------------------------

    def finish(self, outcome: Outcome, tick: int | None) -> bool:
        """Set the outcome once; False if it was already set."""
        if self._done.is_set():
            return False
        self.outcome = outcome
        self.ended_at = tick
        self.ended_wall = time.time()
        self._done.set()
        return True

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def release(self) -> None:
        """Drop the rendered picture and sound once the outcome is settled. The owner and the
        segment refer to each other, so without this a settled segment's frames (hundreds of
        MB at 720p for a long message) would wait for a full garbage collection."""
        self.frames.clear()
        self.audio.clear()
        self.cues.clear()
