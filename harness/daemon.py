"""Run-to-completion harness: the daemon as a subprocess, a receiving FFmpeg, the broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import numpy as np

from avatarcast.broker.messages import MAX_TEXT_CHARS
from avatarcast.settings import DEFAULT_IDLE_SOURCE

from .services import free_port

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


VOICE_CACHE = Path(tempfile.gettempdir()) / f"avatarcast-test-voices-{os.getuid()}"


@dataclass
class QueueNames:
    speak: str
    control: str
    dead: str
    events: str  # the lifecycle events' exchange

    @classmethod
    def unique(cls) -> QueueNames:
        base = f"avatarcast.test.{uuid.uuid4().hex[:8]}"
        return cls(f"{base}.speak", f"{base}.control", f"{base}.dead", f"{base}.events")

    def channel(self, cid: str) -> QueueNames:
        """A channel's queues (its id appended, as channels.channel_queues names them); the
        events exchange is shared."""
        return QueueNames(f"{self.speak}.{cid}", f"{self.control}.{cid}", f"{self.dead}.{cid}",
                          self.events)

    def env(self) -> dict[str, str]:
        return {
            "AVATARCAST_BROKER__SPEAK_QUEUE": self.speak,
            "AVATARCAST_BROKER__CONTROL_QUEUE": self.control,
            "AVATARCAST_BROKER__DEAD_LETTER_QUEUE": self.dead,
            "AVATARCAST_BROKER__EVENTS_EXCHANGE": self.events,
        }


_PAGE = os.sysconf("SC_PAGE_SIZE")
_SENTENCE = "This sentence is one of many in the longest text a publisher may send. "
# The longest text a publisher may send, in ordinary sentences: minutes of speech.
LONGEST_TEXT = (_SENTENCE * (MAX_TEXT_CHARS // len(_SENTENCE) + 1))[:MAX_TEXT_CHARS].strip()


def write_channels(path: Path, urls: dict[str, str], extra: dict[str, str] | None = None) -> Path:
    """A channels file: each channel id streaming to its URL, plus any TOML lines of its own."""
    path.write_text("".join(
        f'[[channels]]\nid = "{cid}"\noutput.rtmp_urls = ["{url}"]\n{(extra or {}).get(cid, "")}'
        for cid, url in urls.items()))
    return path


def aired(*logs: str) -> list[str]:
    """Ids that daemons settled as aired, in order, over the logs given (lives, workers)."""
    return [m for log in logs for m in re.findall(r"settled (\S+): aired", log)]


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE / 2**20


class DaemonProc:
    def __init__(self, workdir: Path, queues: QueueNames, extra_env: dict[str, str]) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.health_port = free_port()
        self.log_path = workdir / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
        env.update(queues.env())
        env.update({
            "AVATARCAST_HEALTH__PORT": str(self.health_port),
            "AVATARCAST_STATE_DIR": str(workdir / "state"),
            # Voices patched for phoneme timings once for every daemon the tests start.
            "AVATARCAST_SPEECH__CACHE_DIR": str(VOICE_CACHE),
            "AVATARCAST_AVATAR__IDLE_SOURCE": str(DEFAULT_IDLE_SOURCE),
            "AVATARCAST_VIDEO__WIDTH": "320",
            "AVATARCAST_VIDEO__HEIGHT": "240",
            "AVATARCAST_VIDEO__BITRATE_KBPS": "400",
            "AVATARCAST_VIDEO__PRESET": "ultrafast",
            "AVATARCAST_SPEECH__PROVIDERS": '["piper"]',
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra_env)
        outputs = {f"AVATARCAST_OUTPUT__{k}" for k in ("RTMP_URLS", "SRT_URLS", "HLS_DIR",
                                                        "RECORD_PATH")}
        if not outputs & set(env):
            env["AVATARCAST_OUTPUT__RECORD_PATH"] = str(workdir / "program.mkv")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avatarcast", "run"], cwd=workdir, env=env,
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                return dict(json.load(r))
        except urllib.error.HTTPError as e:
            return dict(json.load(e))
        except OSError:
            return None

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        st: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}):\n{self.log()}")
            st = self.status()
            if st is not None and pred(st):
                return st
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {what}; last status {st}\n{self.log()[-3000:]}"
        )

    def wait_for_backoff(self, at_least_s: float, timeout: float) -> float:
        """Wait for the daemon to log a new reconnect backoff (encoder or output) of at least
        `at_least_s`; returns it. A server brought back right after this returns comes back
        during that backoff, so only the probe, not the backoff's end, can bring it back."""
        pattern = re.compile(r"(?:next try in|retrying in up to) (\d+\.\d) s")

        def long_ones() -> list[float]:
            return [s for s in map(float, pattern.findall(self.log())) if s >= at_least_s]

        seen = len(long_ones())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = long_ones()
            if len(found) > seen:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no backoff of {at_least_s} s logged in {timeout} s\n"
                             f"{self.log()[-3000:]}")

    def outcomes(self, st: dict[str, Any]) -> dict[str, str]:
        return {e["id"]: e["outcome"] for e in st["recent"]}

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_mib(self) -> float:
        """The daemon's resident memory (FFmpeg, a process of its own, not included)."""
        return rss_mib(self.proc.pid)


class Receiver:
    """A real RTMP client recording what the server relays."""

    def __init__(self, url: str, out: Path, idle_timeout_s: float = 3.0) -> None:
        """`idle_timeout_s`: how long the client waits for data, before the stream starts and
        after it ends (a client playing an RTMP stream never notices its end otherwise)."""
        self.out = out
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-rw_timeout",
             str(int(idle_timeout_s * 1e6)), "-i", url, "-c", "copy", "-f", "flv",
             # Every packet on disk as it arrives: the file's growth shows the stream's end.
             "-flush_packets", "1", "-y", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def wait_receiving(self, min_bytes: int = 96_000, limit_s: float = 30.0) -> None:
        """Until the recording holds `min_bytes` (a client joining a stream needs a moment
        to connect and find a keyframe, longer on a busy machine)."""
        deadline = time.monotonic() + limit_s
        while True:
            got = self.out.stat().st_size if self.out.exists() else 0
            if got >= min_bytes:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"the client ended (exit {self.proc.returncode}) after "
                                     f"recording {got} bytes (wanted {min_bytes})")
            if time.monotonic() > deadline:
                raise AssertionError(f"the client recorded {got} bytes in {limit_s:.0f} s "
                                     f"(wanted {min_bytes})")
            time.sleep(0.1)

    def finish(self, quiet_s: float = 1.5, limit_s: float = 20.0) -> None:
        """After the publisher stopped: let the stream's tail arrive (the file has stopped
        growing for `quiet_s`), then end the recording cleanly."""
        deadline = time.monotonic() + limit_s
        size, still_since = -1, time.monotonic()
        while self.proc.poll() is None and time.monotonic() < deadline:
            now = self.out.stat().st_size if self.out.exists() else 0
            if now != size:
                size, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet_s:
                break
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.terminate()  # FFmpeg writes the file's trailer on SIGTERM
        self.wait(10)

    def wait(self, timeout: float = 20) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(5)


async def publish_raw(queue: str, body: bytes, message_id: str | None = None,
                      url: str = AMQP) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        # A message nothing can route (the queue not declared yet) fails the test at once.
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        await ch.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue, mandatory=True,
        )


def publish(queue: str, payload: dict[str, Any] | bytes, message_id: str | None = None,
            url: str = AMQP) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    asyncio.run(publish_raw(queue, body, message_id, url))


async def _queue(name: str, take: bool,
                 url: str = AMQP) -> tuple[int, list[aio_pika.abc.AbstractIncomingMessage]]:
    """(messages ready, and if `take` those messages removed from the queue)."""
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(name, passive=True)
        count = q.declaration_result.message_count or 0
        msgs = []
        while take and (m := await q.get(no_ack=True, fail=False)) is not None:
            msgs.append(m)
        return count, msgs


def queue_depth(name: str, url: str = AMQP) -> int:
    return asyncio.run(_queue(name, take=False, url=url))[0]


def consumers(name: str, url: str = AMQP) -> int:
    """How many consumers the broker counts on queue `name` now."""
    async def run() -> int:
        conn = await aio_pika.connect(url)
        async with conn:
            q = await (await conn.channel()).declare_queue(name, passive=True)
            return int(q.declaration_result.consumer_count or 0)
    return asyncio.run(run())


def drain(name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    return asyncio.run(_queue(name, take=True))[1]


def delete_queues(q: QueueNames, url: str = AMQP, deadline_s: float = 60.0) -> None:
    """Delete a channel's queues and exchange. Right after a broker restart a stream or
    quorum queue can still be coming back ("home node ... is down or inaccessible"): that
    delete is tried again on a new channel until `deadline_s`."""
    async def run() -> None:
        conn = await aio_pika.connect(url)
        async with conn:
            for name in (q.speak, q.control, q.dead, q.control + ".standing",
                         q.speak + ".handled"):
                await _delete_when_up(conn, name, time.monotonic() + deadline_s)
            ch = await conn.channel()
            await ch.exchange_delete(q.events)
    asyncio.run(run())


async def _delete_when_up(conn: aio_pika.abc.AbstractConnection, name: str,
                          deadline: float) -> None:
    while True:
        ch = await conn.channel()
        try:
            await ch.queue_delete(name)
            await ch.close()
            return
        except aio_pika.exceptions.ChannelNotFoundEntity as e:
            if "down or inaccessible" not in str(e) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


# -- what the recording shows ------------------------------------------------------------

def packets(path: Path, stream: str) -> np.ndarray:
    """(pts, duration) of every packet of stream 'v' or 'a', in seconds."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
         "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = [line.split(",") for line in out.split() if line]
    return np.array([(float(p), float(d) if d != "N/A" else 0.0) for p, d in rows])


def decode_audio(path: Path, rate: int = 48000) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-ac", "1", "-ar", str(rate),
         "-f", "f32le", "-"],
        capture_output=True, check=True,
    ).stdout
    return np.frombuffer(out, dtype=np.float32)


def rms_windows(samples: np.ndarray, rate: int, window_s: float) -> np.ndarray:
    n = int(rate * window_s)
    usable = samples[: samples.size // n * n].reshape(-1, n)
    return np.sqrt((usable.astype(np.float64) ** 2).mean(axis=1))
