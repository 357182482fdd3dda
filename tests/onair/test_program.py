"""The program, tick by tick: idle cycle, cut-in on the cycle, crossfades, skip and clear."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from avatarcast.media.frames import Frame
from avatarcast.media.idle import IdleCycle
from avatarcast.onair.program import Program
from avatarcast.onair.segment import Outcome, Segment
from avatarcast.onair.state import StateMachine, StreamState
from avatarcast.onair.tick import CUT_BURST, START_BURST

W, H, SPF = 8, 4, 1600


def idle_cycle(n: int) -> IdleCycle:
    return IdleCycle([np.full((H * 3 // 2, W), 10 * i, dtype=np.uint8) for i in range(n)])


def make(n_idle: int = 5, xfade: int = 4, gap: int = 0,
         on_cut: Callable[[], None] | None = None) -> tuple[Program, list[Segment]]:
    done: list[Segment] = []
    prog = Program(
        idle_cycle(n_idle), fps=30, spf=SPF, crossfade_frames=xfade, gap_frames=gap,
        lead_frames=2, machine=StateMachine(), on_cut=on_cut,
    )
    prog.subscribe(done.append)
    prog.encoder_up(True)
    return prog, done


def talking(prog: Program, seg_id: str, frames: int, planned: int) -> Segment:
    seg = Segment(seg_id, planned)
    for k in range(frames):
        seg.audio.append(np.full(SPF, 1000 + k, dtype=np.int16))
        # A talking frame is the idle frame of its cycle index, marked so we can recognise it.
        f: Frame = prog.idle.frame(planned + k).copy()
        f[0, 0] = 255
        seg.frames.append(f)
    seg.sealed = True
    return seg


def test_idle_is_a_ping_pong_cycle() -> None:
    cyc = idle_cycle(4)
    assert [cyc.index(n) for n in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert idle_cycle(1).period == 1 and idle_cycle(1).index(12345) == 0


def test_every_tick_has_one_frame_of_audio_and_silence_when_idle() -> None:
    prog, _ = make()
    for n in range(20):
        out = prog.tick(n)
        assert out.audio.shape == (SPF,) and not out.audio.any()
        assert np.array_equal(out.frame, prog.idle.frame(n))
    assert prog.machine.state is StreamState.IDLE


def test_segment_planned_on_the_cycle_cuts_in_without_a_crossfade() -> None:
    prog, _ = make()
    prog.tick(0)
    planned = prog.plan_start()
    seg = talking(prog, "a", 10, planned)
    rendered = [seg.frames[k] for k in range(10)]
    prog.submit(seg)
    outs = [prog.tick(n) for n in range(1, planned + 12)]
    on_air = [o for o in outs if o.segment is seg]
    assert len(on_air) == 10 and seg.started_at == planned
    for k, o in enumerate(on_air):
        assert np.array_equal(o.frame, rendered[k])  # untouched: no blend needed
        assert o.audio[0] == 1000 + k
    assert on_air[-1].receipt is not None
    on_air[-1].receipt.written()
    assert seg.outcome is Outcome.AIRED


def test_off_cycle_segment_crossfades_in_and_out() -> None:
    prog, _ = make(xfade=4)
    seg = talking(prog, "a", 12, planned=1)  # planned for frame 1, will start later
    rendered = [seg.frames[k] for k in range(12)]
    for n in range(3):
        prog.tick(n)
    prog.submit(seg)
    ticks = range(3, 20)
    outs = [prog.tick(n) for n in ticks]
    on_air = [(n, o.frame) for n, o in zip(ticks, outs, strict=True) if o.segment is seg]
    assert len(on_air) == 12
    weights = []  # how much of the talking frame each aired frame shows (0 idle, 1 talking)
    for k, (n, frame) in enumerate(on_air):
        idle, talk = prog.idle.frame(n), rendered[k]
        # A mix of the idle frame under it and the talking frame, nothing else.
        lo, hi = np.minimum(idle, talk), np.maximum(idle, talk)
        assert ((lo <= frame) & (frame <= hi)).all(), k
        # The marked pixel (255 in a talking frame, at most 40 in idle) measures the mix.
        weights.append((int(frame[0, 0]) - int(idle[0, 0])) / (255 - int(idle[0, 0])))
    fade_in, middle, fade_out = weights[:4], on_air[4:8], weights[8:]
    # In over the first 4 frames: rising from idle towards talking, never all the way.
    assert 0 < fade_in[0] < fade_in[-1] < 1 and fade_in == sorted(set(fade_in)), weights
    # The middle frames are the talking frames untouched.
    assert all(np.array_equal(f, rendered[4 + i]) for i, (_, f) in enumerate(middle))
    # Out over the last 4: falling back towards idle, never all the way.
    assert 1 > fade_out[0] > fade_out[-1] > 0, weights
    assert fade_out == sorted(set(fade_out), reverse=True), weights


def test_frames_are_let_go_once_sent() -> None:
    prog, _ = make()
    seg = talking(prog, "a", 50, 0)
    prog.submit(seg)
    sent = sum(prog.tick(n).segment is seg for n in range(40))
    assert sent > 30
    # The program keeps the frame on screen (for a hold or a cut) and what is still to come.
    assert seg.frames.held == 50 - sent + 1 and seg.audio.held == 50 - sent
    assert len(seg.frames) == 50  # indices stay absolute


def test_skip_cuts_back_to_idle_within_three_frames() -> None:
    prog, done = make(xfade=4)
    prog.tick(0)
    seg = talking(prog, "a", 100, prog.plan_start())
    prog.submit(seg)
    n = 1
    while prog.on_air is None:
        prog.tick(n)
        n += 1
    prog.skip()
    outs = [prog.tick(n + i) for i in range(6)]
    assert done == [seg] and seg.outcome is Outcome.SKIPPED
    # The slice after the cut fades out over 5 ms (no click), then silence.
    assert outs[0].audio[0] != 0 and not outs[0].audio[SPF * 30 // 200 :].any()
    assert all(not o.audio.any() for o in outs[1:])
    assert all(o.segment is None for o in outs)
    assert np.array_equal(outs[3].frame, prog.idle.frame(n + 3))  # crossfade over by frame 3
    assert prog.machine.state is StreamState.IDLE


def test_clear_drops_the_backlog_and_pause_holds_it() -> None:
    prog, done = make()
    prog.pause(True)
    segs = [talking(prog, s, 5, 0) for s in "abc"]
    for s in segs:
        prog.submit(s)
    for n in range(10):
        prog.tick(n)
    assert prog.on_air is None and prog.machine.state is StreamState.PROCESSING
    prog.clear()
    prog.tick(10)
    assert [s.outcome for s in done] == [Outcome.CLEARED] * 3
    assert prog.machine.state is StreamState.IDLE


def test_dropped_last_frame_hands_the_segment_back_to_render_again() -> None:
    prog, done = make()
    seg = talking(prog, "a", 3, 0)
    prog.submit(seg)
    outs = [prog.tick(n) for n in range(6)]
    receipt = next(o.receipt for o in outs if o.receipt is not None)
    receipt.dropped()
    later = [prog.tick(n) for n in range(6, 12)]
    # Its first frames are gone: the owner renders it anew (Outcome.RETRY), nothing replays.
    assert done == [seg] and seg.outcome is Outcome.RETRY
    assert not any(o.segment is seg for o in later)


def test_encoder_outage_mid_segment_cuts_it_for_a_retry() -> None:
    prog, done = make()
    seg = talking(prog, "a", 30, 0)
    prog.submit(seg)
    for n in range(8):
        prog.tick(n)
    assert prog.on_air is seg
    prog.encoder_up(False)
    outs = [prog.tick(n) for n in range(8, 14)]
    assert done == [seg] and seg.outcome is Outcome.RETRY
    assert all(o.segment is None for o in outs)
    assert prog.machine.state is StreamState.ERROR


def test_encoder_outage_is_error_and_nothing_airs() -> None:
    prog, _ = make()
    prog.encoder_up(False)
    prog.tick(0)
    assert prog.machine.state is StreamState.ERROR
    prog.submit(talking(prog, "a", 3, 0))
    assert all(prog.tick(n).segment is None for n in range(1, 5))
    prog.encoder_up(True)
    prog.tick(5)
    assert prog.machine.state is StreamState.PROCESSING
    assert any(prog.tick(n).segment is not None for n in range(6, 10))


def air(prog: Program, seg: Segment, n: int) -> int:
    """Tick from n until seg is on air; the next tick number."""
    while prog.on_air is not seg:
        prog.tick(n)
        n += 1
        assert n < 1000, "never aired"
    return n


def test_interrupt_cuts_at_once_and_holds_the_queue_for_the_urgent_segment() -> None:
    prog, done = make(xfade=2)
    on_air, waiting = talking(prog, "a", 100, 0), talking(prog, "b", 10, 0)
    prog.submit(on_air)
    prog.submit(waiting)
    n = air(prog, on_air, 0)
    prog.interrupt()  # the interrupting message arrived; its speech is not rendered yet
    outs = [prog.tick(n + i) for i in range(20)]
    n += 20
    assert done == [on_air] and on_air.outcome is Outcome.INTERRUPTED
    assert all(o.segment is None for o in outs)  # "b" is held back for the urgent one
    assert not any(o.audio[SPF * 30 // 200 :].any() for o in outs)
    assert prog.machine.state is StreamState.PROCESSING
    urgent = talking(prog, "u", 5, 0)
    urgent.urgent = True
    prog.submit(urgent, front=True, release_hold=True)
    n = air(prog, urgent, n)
    n = air(prog, waiting, n)  # then the one that waited
    assert urgent.started_at is not None and waiting.started_at is not None
    assert urgent.started_at < waiting.started_at


def test_an_urgent_segment_starts_while_an_earlier_interrupt_still_holds() -> None:
    prog, _ = make()
    waiting = talking(prog, "b", 10, 0)
    prog.submit(waiting)
    prog.interrupt()
    prog.interrupt()  # a second interrupting message; the first is rendered later
    second = talking(prog, "u2", 5, 0)
    second.urgent = True
    prog.submit(second, front=True, release_hold=True)
    n = air(prog, second, 0)
    for i in range(20):
        assert prog.tick(n + i).segment is not waiting
    prog.release_hold()  # the first one failed: nothing holds "b" any more
    air(prog, waiting, n + 20)


def test_interrupt_takes_back_a_waiting_segment_and_cuts_one_on_air() -> None:
    prog, done = make()
    on_air, rendering = talking(prog, "a", 100, 0), talking(prog, "b", 10, 0)
    prog.submit(on_air)
    prog.submit(rendering)
    n = air(prog, on_air, 0)
    replies: list[bool] = []
    prog.interrupt(take_back=rendering, reply=replies.append)
    prog.release_hold()
    for i in range(30):
        assert prog.tick(n + i).segment is not rendering
    assert replies == [True] and done == [on_air] and not rendering.done
    # Taking back the segment that is on air cuts it like the rest.
    again = talking(prog, "c", 100, 0)
    prog.submit(again)
    n = air(prog, again, n + 30)
    prog.interrupt(take_back=again, reply=replies.append)
    prog.tick(n)
    assert replies == [True, False] and again.outcome is Outcome.INTERRUPTED


def test_an_interrupt_says_when_its_cut_has_gone_to_the_encoder() -> None:
    # The interrupting speech is synthesized once the cut has left (the cut's tick and the
    # next go at once, then one at its time), not while the encoder is taking the cut's
    # frames: on a small machine the two would share the cores, and the old speech would be
    # heard for longer.
    prog, _ = make()
    on_air = talking(prog, "a", 100, 0)
    prog.submit(on_air)
    n = air(prog, on_air, 0)
    cleared: list[int] = []
    prog.interrupt(cleared=lambda: cleared.append(prog.tick_no))
    prog.tick(n)  # the cut
    assert on_air.outcome is Outcome.INTERRUPTED and not cleared
    for k in range(1, CUT_BURST):  # the rest of the burst
        prog.tick(n + k)
        assert not cleared
    prog.tick(n + CUT_BURST)  # the first tick at its own time
    assert cleared == [n + CUT_BURST]
    # Nothing on air: nothing to wait for.
    prog.interrupt(cleared=lambda: cleared.append(-1))
    assert cleared == [n + CUT_BURST, -1]


def other_cycle(n: int) -> IdleCycle:
    """Another avatar's cycle: frames no blend of the first cycle's can produce."""
    return IdleCycle([np.full((H * 3 // 2, W), 200 + i, dtype=np.uint8) for i in range(n)])


def test_a_segment_of_another_avatar_cuts_in_hard_and_its_idle_stays_until_the_queue_empties(
) -> None:
    prog, _ = make(n_idle=5, xfade=4, gap=2)
    other = other_cycle(3)
    prog.tick(0)
    planned = prog.plan_start()
    seg = Segment("b", planned, idle=other)
    for k in range(6):
        seg.audio.append(np.full(SPF, 1000 + k, dtype=np.int16))
        f = other.frame(planned + k).copy()
        f[0, 0] = 1
        seg.frames.append(f)
    seg.sealed = True
    prog.submit(seg)
    prog.preparing()  # the next message is still being synthesized
    outs = {n: prog.tick(n) for n in range(1, planned + 12)}
    for k in range(6):  # no crossfade from one person to another: a cut on the frame
        assert outs[planned + k].frame[0, 0] == 1 and outs[planned + k].segment is seg
    for n in range(planned + 6, planned + 12):  # then the other avatar's own idle
        assert np.array_equal(outs[n].frame, other.frame(n)), n
    prog.prepared()  # nothing more to say: back to the stream's avatar, on a frame
    n = planned + 12
    assert np.array_equal(prog.tick(n).frame, prog.idle.frame(n))


def test_a_new_default_avatar_cuts_in_on_a_frame_boundary_when_nothing_is_on_air() -> None:
    prog, _ = make(n_idle=5, xfade=4)
    for n in range(3):
        prog.tick(n)
    other = other_cycle(4)
    prog.set_default(other)
    assert np.array_equal(prog.tick(3).frame, other.frame(3))
    assert prog.idle is other
    # A segment rendered for the old avatar still airs as rendered, then the new idle.
    seg = talking(prog, "a", 4, prog.plan_start())
    prog.set_default(idle_cycle(5))
    prog.submit(seg)
    outs = [prog.tick(n) for n in range(4, 14)]
    assert any(o.segment is seg for o in outs)
    assert np.array_equal(outs[-1].frame, prog.idle.frame(13))


def test_the_silence_after_a_segment_or_a_cut_is_announced() -> None:
    """The encoder may send silence early only where nothing can start: the gap after a
    segment, the fade after a cut."""
    prog, _ = make(n_idle=5, xfade=4, gap=3)
    prog.tick(0)
    seg = talking(prog, "a", 4, prog.plan_start())
    prog.submit(seg)
    outs = [prog.tick(n) for n in range(1, seg.planned_start + 8)]
    talk = [o for o in outs if o.segment is seg]
    assert [o.quiet_after for o in talk] == [0, 0, 0, 3]  # the last frame: the gap follows
    after = outs[next(i for i, o in enumerate(outs) if o is talk[-1]) + 1:]
    assert [o.quiet_after for o in after[:4]] == [2, 1, 0, 0]
    seg2 = talking(prog, "b", 30, prog.plan_start())
    prog.submit(seg2)
    n = seg.planned_start + 8
    waiting: list[tuple[int, int]] = []  # (tick, silence promised after it) before b airs
    while prog.on_air is not seg2:
        out = prog.tick(n)
        if out.segment is not seg2:
            waiting.append((n, out.quiet_after))
        n += 1
    # The gap is over and b can start: no promised silence reaches into b's first frame.
    assert waiting and seg2.started_at == waiting[-1][0] + 1
    assert all(m + q < seg2.started_at for m, q in waiting), (waiting, seg2.started_at)
    prog.skip()
    cut = prog.tick(n)
    assert cut.segment is None and cut.quiet_after == 3  # the rest of the fade


def test_early_silence_keeps_the_sample_count() -> None:
    from avatarcast.onair.encoder import _EarlySilence

    early = _EarlySilence(2048)
    ticks = [np.full(SPF, 7, np.int16)] + [np.zeros(SPF, np.int16)] * 3 + \
        [np.full(SPF, 9, np.int16)]
    quiet = [3 * SPF, 2 * SPF, SPF, 0, 0]  # the silence promised after each tick
    written: list[np.ndarray] = []
    for audio, q in zip(ticks, quiet, strict=True):
        written += early.parts(audio, q)
        assert sum(len(w) for w in written) <= sum(len(t) for t in ticks)
    out = np.concatenate(written)
    assert np.array_equal(out, np.concatenate(ticks))  # the same samples, in the same places
    first = early.parts(np.full(SPF, 1, np.int16), 10 * SPF)
    assert sum(len(p) for p in first) == SPF + 2048  # never more than the lookahead ahead


def test_a_segments_first_ticks_and_a_cuts_say_they_go_out_at_once() -> None:
    """An AAC packet leaves FFmpeg once 4096 samples after its start have come in, and only
    with a video frame timed after it: the start of a speech and the end of a cut sound
    would otherwise wait two or three ticks in the encoder."""
    prog, _ = make(xfade=2)
    seg = talking(prog, "a", 100, 0)
    prog.submit(seg)
    n = 0
    while (out := prog.tick(n)).segment is not seg:
        assert out.rush == 0  # idle ticks go at their time
        n += 1
    assert out.rush == START_BURST - 1
    assert all(prog.tick(n + k).rush == 0 for k in range(1, 10))  # then the clock again
    prog.skip()
    cut = prog.tick(n + 10)
    assert seg.outcome is Outcome.SKIPPED and cut.rush == CUT_BURST - 1
    assert prog.tick(n + 11).rush == 0
    # A segment with fewer frames ready than the burst rushes only those.
    short = talking(prog, "b", 2, 0)
    short.sealed = False
    short.heard_all = True
    prog.submit(short)
    n += 12
    while (out := prog.tick(n)).segment is not short:
        n += 1
    assert out.rush == 1


class _FakeTime:
    """The pacer's clock in a test: it moves only when the pacer waits."""

    def __init__(self) -> None:
        self.ns = 0

    def now(self) -> int:
        return self.ns


class _ScriptedWake(threading.Event):
    """The pacer's wake event, and its only way to wait: a wait moves the fake clock on to its
    timeout, or to the next scripted command before it (a skip, which may wake the pacer).
    Past `end_ns` it waits for real, until the pacer is stopped."""

    def __init__(self, time: _FakeTime, script: list[tuple[int, Callable[[], None]]],
                 end_ns: int) -> None:
        super().__init__()
        self.time, self.script, self.end_ns = time, sorted(script, key=lambda s: s[0]), end_ns
        self.over = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        assert timeout is not None
        until = self.time.ns + round(timeout * 1e9)
        while self.script and self.script[0][0] <= until:
            at, command = self.script.pop(0)
            self.time.ns = max(self.time.ns, at)
            command()
            if self.is_set():
                return True
        if until >= self.end_ns:
            self.over.set()
            return super().wait()
        self.time.ns = until
        return False


@pytest.mark.parametrize("phase", [0.001, 0.5, 0.999])
def test_the_pacer_sends_a_cut_and_a_start_in_bursts_and_every_other_tick_at_its_time(
    phase: float,
) -> None:
    """On a fake clock (it moves only while the pacer waits), so that what is checked is the
    pacer's logic, not how busy this machine is: a speech's first three ticks go at once, and
    a skip's tick goes as soon as it is commanded (at any phase of the tick) with the next one
    right after it; every other tick goes at its time, and none is dropped."""
    from avatarcast.onair.clock import FrameClock
    from avatarcast.onair.pacer import Pacer

    fake = _FakeTime()
    clock = FrameClock(30, now_ns=fake.now)
    leads: dict[int, int] = {}  # tick -> how many ticks before its time it was sent
    audible: list[int] = []
    quiet: list[int] = []

    class Sink:
        generation = 1

        def submit(self, frame: Frame, audio: np.ndarray, receipt: object = None,
                   quiet_after: int = 0) -> bool:
            n = prog.tick_no
            leads[n] = n - clock.frame_at(clock.now_ns())
            if audio.any():
                audible.append(n)
            if quiet_after:
                quiet.append(n)
            return True

    prog, done = make(n_idle=5, xfade=4, on_cut=lambda: wake.set())
    start = prog.plan_start()
    prog.submit(talking(prog, "long", 300, start))
    skip_ns = clock.deadline_ns(start + 10) + round(phase * 1e9 / 30)
    wake = _ScriptedWake(fake, [(skip_ns, prog.skip)], clock.deadline_ns(start + 30))
    pacer = Pacer(clock, prog, Sink(), wake=wake)
    pacer.start()
    try:
        assert wake.over.wait(10), "the pacer did not get through the script"
    finally:
        pacer.stop()
    assert pacer.error is None
    assert done and done[0].outcome is Outcome.SKIPPED
    assert audible[0] == start and quiet, "the speech started as planned, and was cut"
    cut = quiet[0]
    assert clock.frame_at(skip_ns) == cut - 1  # the cut is the tick after the skip's
    early = {n: lead for n, lead in leads.items() if lead}
    # 1 and 2 ticks early (MAX_AHEAD is 3), and nothing else early.
    assert early == ({start + k: k for k in range(1, START_BURST)}
                     | {cut + k: k + 1 for k in range(CUT_BURST)})
    assert max(leads) >= cut + 10 and pacer.frames_dropped == 0


def _unsealed_short(msg_id: str) -> tuple[Program, Segment, int]:
    """A program, and a 6-frame segment submitted unsealed that would wait for 45 frames
    (1.5 s, more than it has): (program, segment, its planned start)."""
    prog, _ = make()
    prog.tick(0)
    planned = prog.plan_start()
    seg = talking(prog, msg_id, 6, planned)
    seg.sealed = False
    seg.min_unsealed = 45
    prog.submit(seg)
    return prog, seg, planned


def test_a_short_text_whose_speech_is_complete_airs_before_all_its_frames_are_rendered() -> None:
    prog, seg, planned = _unsealed_short("short")
    for n in range(1, planned + 3):
        prog.tick(n)
    assert seg.started_at is None  # the speech may go on: it waits for more
    seg.heard_all = True  # the speech ended; its frames are still rendering
    n = planned + 3
    assert prog.tick(n).segment is seg and seg.started_at == n


def test_an_answer_airs_what_it_has_while_its_model_thinks_and_the_wait_is_not_late() -> None:
    prog, seg, planned = _unsealed_short("answer")
    for n in range(1, planned + 2):
        prog.tick(n)
    assert seg.started_at is None  # more speech may be on its way: it waits
    seg.waiting_for_text = True  # everything said is in; the model is thinking
    n = planned + 2
    assert prog.tick(n).segment is seg and seg.started_at == n
    outs = [prog.tick(n + k) for k in range(1, 10)]
    assert [o.thinking for o in outs] == [False] * 5 + [True] * 4  # its 6 frames, then held
    assert prog.frames_late == 0
    seg.waiting_for_text = False  # the next sentence began: a hold now is late
    assert not prog.tick(n + 10).thinking and prog.frames_late == 1


def test_a_segment_rendered_slower_than_air_waits_for_enough_frames() -> None:
    """On a machine busier than when the animator's speed was measured, a segment's own pace
    decides: it starts once the frames still to come will arrive in time."""
    import time

    seg = Segment("busy", 0)
    for k in range(60):
        seg.audio.append(np.full(SPF, 1, dtype=np.int16))
        if k < 3:
            seg.frames.append(np.zeros((H * 3 // 2, W), np.uint8))
    seg.heard_all = True
    seg.rendering_since = time.monotonic() - 1.0  # 3 frames in a second: 3 fps
    assert not seg.ready(float("inf"), 30)
    for _ in range(57):
        seg.frames.append(np.zeros((H * 3 // 2, W), np.uint8))
    assert seg.ready(float("inf"), 30)  # all there
    fresh = Segment("quick", 0)
    for _ in range(10):
        fresh.audio.append(np.full(SPF, 1, dtype=np.int16))
    fresh.heard_all = True
    fresh.rendering_since = time.monotonic()  # its frames come at once
    for _ in range(2):
        fresh.frames.append(np.zeros((H * 3 // 2, W), np.uint8))
    assert not fresh.ready(float("inf"), 30)  # a few frames in hand first: 3 at 30 fps
    fresh.frames.append(np.zeros((H * 3 // 2, W), np.uint8))
    assert fresh.ready(float("inf"), 30)


def test_each_tick_says_whose_face_it_shows_and_what_the_speech_asks_of_it() -> None:
    from avatarcast.media.cues import Cue

    prog, _ = make()
    assert prog.tick(0).shown is prog.idle and prog.tick(1).cue is None
    planned = prog.plan_start()
    seg = talking(prog, "a", 6, planned)
    other = idle_cycle(1)
    seg.idle = other
    seg.add_cues(Cue(nod=k / 10) for k in range(4))  # fewer than its frames
    prog.submit(seg)
    outs = [prog.tick(n) for n in range(2, planned + 8)]
    on_air = [o for o in outs if o.segment is seg]
    assert [o.cue.nod if o.cue else None for o in on_air] == [0.0, 0.1, 0.2, 0.3, None, None]
    assert all(o.shown is other for o in on_air)
    assert seg.cues.held == 0  # let go of as they air


def test_with_the_pacer_gone_withdrawals_are_carried_out_at_once() -> None:
    """A channel off air for good (its lease went elsewhere): no tick comes to carry out what
    its shutdown withdraws; `carry_out` settles it at once, the one on air and those waiting."""
    prog, done = make()
    prog.tick(0)
    planned = prog.plan_start()
    on_air = talking(prog, "a", 40, planned)
    waiting = talking(prog, "b", 10, planned + 40)
    prog.submit(on_air)
    prog.submit(waiting)
    for n in range(1, planned + 5):
        prog.tick(n)
    assert prog.on_air is on_air
    prog.withdraw(waiting, Outcome.REQUEUED)
    prog.withdraw(on_air, Outcome.REQUEUED)
    assert done == []  # (commanded, for a tick that never comes)
    prog.carry_out()
    assert done == [waiting, on_air]
    assert {s.outcome for s in done} == {Outcome.REQUEUED}
