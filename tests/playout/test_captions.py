"""Captions: words placed on the speech's timeline, shown in the picture word by word (the
scene's captions layer), and a record of what aired (JSON lines, WebVTT) on the stream's
clock."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from avatarcast.avatar.face.visemes import VISEMES, Phone
from avatarcast.onair.segment import Segment
from avatarcast.onair.tick import TickOutput
from avatarcast.playout.captions.record import AirRecord, vtt_time
from avatarcast.playout.captions.track import CaptionTrack, Shown
from avatarcast.playout.captions.words import Script, Word, caption_lines, timed_words
from avatarcast.playout.scene.compose import Compositor
from avatarcast.playout.scene.spec import Scene
from harness.daemon import QueueNames
from harness.services import NginxRtmp
from harness.speak import caption_ink, caption_lags, speak_and_record

W, H, FPS, RATE = 640, 360, 30, 48000
SPF = RATE // FPS


def test_words_take_the_spoken_spans() -> None:
    spans = [(100, 900), (900, 2000), (2500, 4000)]
    words = timed_words("Hello big world.", spans, 0, 5000)
    assert [(w.start, w.end, w.text) for w in words] == [
        (100, 900, "Hello"), (900, 2000, "big"), (2500, 4000, "world.")]
    # "42" is read as two words: the spans are shared out in order, none lost or reordered.
    shared = timed_words("It is 42 now", [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], 0, 5)
    assert [w.text for w in shared] == ["It", "is", "42", "now"]
    assert all(a.start <= b.start for a, b in itertools.pairwise(shared))
    assert shared[-1].end == 5
    # Without timings: spread over the piece by length.
    spread = timed_words("a bbbb", [], 1000, 2000)
    assert spread[0].start == 1000 and spread[-1].end == 2000
    assert spread[1].start - spread[0].start < spread[1].end - spread[1].start
    assert timed_words("", [], 0, 10) == [] and timed_words(None, [(0, 1)], 0, 1) == []


def test_lines_are_short_and_end_with_sentences() -> None:
    text = "One two. Three four five six seven eight nine ten eleven twelve thirteen"
    words = [Word(i, i + 1, t) for i, t in enumerate(text.split())]
    lines = caption_lines(words, 24)
    assert " ".join(w.text for w in lines[0]) == "One two."
    assert all(len(" ".join(w.text for w in line)) <= 24 for line in lines)
    assert [w for line in lines for w in line] == words


def _track() -> CaptionTrack:
    return CaptionTrack(spf=SPF, fps=FPS, max_chars=30)


def test_each_word_shows_from_the_frame_that_holds_its_first_sample() -> None:
    c = _track()
    c.add([Word(2 * SPF + 10, 5 * SPF, "Good"), Word(5 * SPF + 1599, 9 * SPF, "evening.")])
    c.add([Word(20 * SPF, 24 * SPF, "Welcome")])
    assert c.shown(1) is None
    assert c.shown(2) == Shown(0, 1, "Good", "Good evening.")  # starts inside frame 2
    assert c.shown(4) == Shown(0, 1, "Good", "Good evening.")
    assert c.shown(5) == Shown(0, 2, "Good evening.", "Good evening.")  # its last sample
    assert c.shown(19) == Shown(0, 2, "Good evening.", "Good evening.")  # held ...
    assert c.shown(20) == Shown(1, 1, "Welcome", "Welcome")  # ... until the next line begins
    assert c.shown(24 + FPS + 1) is None  # a second after the last word, gone


def _on_air(c: Compositor, frame: np.ndarray, seg: Segment, k: int) -> np.ndarray:
    """What the scene makes of frame k of `seg` on air (as the pacer thread calls it)."""
    out = TickOutput(frame, np.zeros((SPF, 2), np.int16), seg, index=k)
    c(k, out)
    return out.frame


def test_captions_are_a_layer_in_the_lower_band_that_never_touches_the_shared_frame(
    tmp_path: Path,
) -> None:
    seg = Segment("m", 0)
    seg.captions = _track()
    seg.captions.add([Word(0, 3 * SPF, "Hello"), Word(3 * SPF, 6 * SPF, "there")])
    idle = np.full((H * 3 // 2, W), 128, np.uint8)
    idle[:H] = 90
    before = idle.copy()
    c = Compositor(Scene(), tmp_path, W, H, FPS, captions=True)
    one, two = _on_air(c, idle, seg, 0), _on_air(c, idle, seg, 3)
    assert np.array_equal(idle, before)  # the idle frame is shared by every idle tick
    changed = np.argwhere(one[:H] != idle[:H])
    assert changed[:, 0].min() > H * 2 // 3  # lower third
    assert (np.abs(two[:H].astype(int) - one[:H]) > 40).sum() > 50  # the second word appears
    box = np.argwhere(two[:H] != idle[:H])
    assert np.array_equal(np.argwhere(one[:H] != idle[:H]).min(axis=0), box.min(axis=0))
    assert np.array_equal(_on_air(c, idle, seg, 3), two)  # the same picture, the same words
    assert (one[:H] > 200).sum() > 30  # white text ...
    assert (one[:H] < 60).sum() > 500  # ... on a dark box
    # A layer like the others: hidden and shown live, from the next frame on.
    assert c.apply("captions", visible=False) is None
    assert np.array_equal(_on_air(c, idle, seg, 3), idle)
    assert c.apply("captions", visible=True) is None
    assert np.array_equal(_on_air(c, idle, seg, 3), two)
    # Off by default; shown when asked, with the words of the segment on air.
    quiet = Compositor(Scene(), tmp_path, W, H, FPS)
    assert np.array_equal(_on_air(quiet, idle, seg, 3), idle)
    assert quiet.apply("captions", visible=True) is None
    assert np.array_equal(_on_air(quiet, idle, seg, 3), two)
    assert np.array_equal(_on_air(quiet, idle, Segment("idle", 0), 3), idle)  # no words
    # A frame the motion made for this tick alone is drawn on in place, not copied.
    mine = idle.copy()
    out = TickOutput(mine, np.zeros((SPF, 2), np.int16), seg, index=3, owned=True)
    c(3, out)
    assert out.frame is mine and np.array_equal(mine, two)


def test_the_record_holds_what_aired_on_the_stream_clock(tmp_path: Path) -> None:
    transcript, vtt = tmp_path / "aired.jsonl", tmp_path / "cc-%Y.vtt"
    rec = AirRecord(transcript=transcript, vtt=vtt, sample_rate=RATE, fps=FPS, max_chars=20)
    script = Script(
        phones=[Phone(0, 4800, VISEMES.index("PP")), Phone(4800, 48000, VISEMES.index("aa"))],
        words=[Word(0, 24000, "First"), Word(24000, 48000, "words."),
               Word(60000, 70000, "Cut")],
    )
    rec.aired("m1", 1, 300, 50000, script)  # cut after 50 000 samples: "Cut" never aired
    rec.aired("m2", 2, 30, 48000, script)  # a new encoder run: a new caption file
    lines = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert [e["id"] for e in lines] == ["m1", "m2"]
    first = lines[0]
    assert first["start_s"] == 10.0 and first["words"][0] == [10.0, 10.5, "First"]
    assert [w[2] for w in first["words"]] == ["First", "words."]
    assert first["phones"][0] == [10.0, 10.1, "PP"]
    files = sorted(tmp_path.glob("cc-*.vtt"))
    assert len(files) == 2
    text = files[0].read_text()
    assert text.startswith("WEBVTT\n\n")
    cue = re.findall(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)\n(.+)\n", text)
    assert cue == [("00:00:10.000", "00:00:11.000", "First words.")]
    assert vtt_time(3725.5) == "01:02:05.500"


def test_an_unwritable_record_is_logged_once_and_airing_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    rec = AirRecord(transcript=blocker / "x.jsonl", vtt=None, sample_rate=RATE, fps=FPS,
                    max_chars=20)
    for _ in range(3):
        rec.aired("m", 1, 0, 10, Script(words=[Word(0, 5, "a")]))
    assert sum("cannot write" in r.message for r in caplog.records) == 1


@pytest.mark.services
def test_captions_in_the_received_stream_start_on_their_words_frames(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    transcript, vtt = tmp_path / "aired.jsonl", tmp_path / "captions.vtt"
    text = "Good evening, and welcome to the show."
    _, st, recording = speak_and_record(tmp_path, queues, rtmp_server, {
        # The captions' timing on its own: with the face alive, the shoulders framed just
        # above the caption's band rise and fall, and bright things there (the suit's ring,
        # the shuttle) move in and out of the band's white.
        "AVATARCAST_ALIVE__ENABLED": "off",
        "AVATARCAST_CAPTIONS__BURN_IN": "true",
        "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript),
        "AVATARCAST_CAPTIONS__VTT_PATH": str(vtt),
    }, [text], animator="lite", width=W, height=H, fps=FPS)
    (entry,) = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert entry["id"] == "t0" and entry["frame"] == st["recent"][0]["stream_first"]
    assert " ".join(w[2] for w in entry["words"]) == text
    assert {"PP", "aa"} <= {p[2] for p in entry["phones"]}  # "welcome", "evening"
    assert text in vtt.read_text()

    ink = caption_ink(recording, W, H)
    starts, late = caption_lags(ink, [w[0] for w in entry["words"]], FPS)
    print(f"caption frames minus word frames: {late}")
    assert all(abs(d) <= 1 for d in late), late
    # Before speech the band shows no caption: the box and the first word come on the frame
    # found above, up to a frame off the word's.
    first = starts[0] + late[0]
    assert ink[first] > 100 and ink[first - 10 : first].max() < 0.1 * ink[first]
