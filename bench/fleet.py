"""A channel's failover, as a viewer sees it: two workers share one 720p30 channel (lite
animator, the default fleet settings); the owner is killed (SIGKILL) and a real RTMP client
measures how long until video arrives again. Each round the killed worker comes back as the
standby, so the channel moves back and forth. Then the owner is frozen and woken (frozen.py).

  python -m bench fleet      (about 5 minutes)
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from avatarcast.settings import FleetSettings
from harness.daemon import DaemonProc, QueueNames, delete_queues, write_channels
from harness.services import NginxRtmp, ensure_rabbitmq, stop_process

from . import frozen, report
from .session import FPS, channels_worker

ROUNDS = 6
FREEZES = 3
RESUMED_GAP_S = 0.25  # a pause in arrivals at least this long is the outage


class Arrivals:
    """A client that reads the stream over and over (it reconnects when it drops), stamping
    each video packet's arrival with the wall clock."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.times: list[float] = []
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._proc = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer",
                 "-rw_timeout", "30000000", "-i", self._url, "-map", "0:v", "-c", "copy",
                 "-f", "framecrc", "-flush_packets", "1", "pipe:1"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                if not line.startswith("#"):
                    self.times.append(time.time())
            self._proc.wait()

    def resumed_after(self, t: float, limit_s: float = 60) -> float | None:
        """When video arrived again after the outage that began after `t`."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            times = list(self.times)
            before = [x for x in times if x <= t]
            prev = before[-1] if before else t
            for x in (x for x in times if x > t):
                if x - prev >= RESUMED_GAP_S:
                    return x
                prev = x
            time.sleep(0.2)
        return None

    def close(self) -> None:
        self._stop.set()
        if self._proc is not None:
            stop_process(self._proc)
        self._thread.join(5)


def _worker(work: Path, name: str, queues: QueueNames) -> DaemonProc:
    return channels_worker(work, name, queues, work / "channels.toml",
                           AVATARCAST_FLEET__CAPACITY="1")


def owner_of_live(workers: list[DaemonProc], limit_s: float = 120,
                  connected: bool = False) -> DaemonProc:
    """The worker that runs channel `live` with its encoder up (`connected`: and its broker)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for w in workers:
            st = w.status() or {}
            ch = st.get("channels", {}).get("live", {})
            if st.get("owned") == ["live"] and ch.get("encoder_alive") and (
                    ch.get("broker_connected") or not connected):
                return w
        time.sleep(0.1)
    raise RuntimeError("no worker runs the channel")


def measure(work: Path) -> dict[str, Any]:
    ensure_rabbitmq()
    rtmp = NginxRtmp(work / "rtmp")
    rtmp.start()
    url = rtmp.url("fleet")
    write_channels(work / "channels.toml", {"live": url})
    queues = QueueNames.unique()
    workers = [_worker(work, "w0", queues)]
    owner_of_live(workers, 300)  # the first start prepares the avatar
    workers.append(_worker(work, "w1", queues))
    client = Arrivals(url)
    at_client: list[float] = []
    encoder_up: list[float] = []
    freezes: list[dict[str, Any]] = []
    try:
        for i in range(ROUNDS):
            owner = owner_of_live(workers)
            standby = next(w for w in workers if w is not owner)
            standby.wait_for(lambda s: bool(s.get("leases_connected")), 60, "standby")
            time.sleep(4.0)
            killed = time.time()
            owner.proc.kill()
            owner.proc.wait()
            new = owner_of_live([standby])
            encoder_up.append(time.time() - killed)
            resumed = client.resumed_after(killed)
            if resumed is not None:
                at_client.append(resumed - killed)
            workers.remove(owner)
            workers.append(_worker(work, f"w{i + 2}", queues))
            assert new is standby
        for i in range(FREEZES):
            owner = owner_of_live(workers, connected=True)
            standby = next(w for w in workers if w is not owner)
            standby.wait_for(lambda s: bool(s.get("leases_connected")), 60, "standby")
            time.sleep(4.0)
            freezes.append(frozen.freeze_once(owner, standby, queues, client,
                                              lambda ws: owner_of_live(ws), f"f{i}"))
            workers.remove(owner)
            owner.stop(60)
            workers.append(_worker(work, f"z{i}", queues))
    finally:
        client.close()
        for w in workers:
            w.stop()
        rtmp.stop()
        delete_queues(queues.channel("live"))
    return {"rounds": ROUNDS, "fps": FPS,
            "killed_to_video_at_client_s": _stats(at_client),
            "killed_to_standby_encoder_up_s": _stats(encoder_up),
            "frozen": {k: _stats([f[k] for f in freezes if f[k] is not None])
                       for k in ("standby_on_air_s", "video_at_client_s", "gap_after_wake_s",
                                 "woken_cpu_s")},
            "settings": {k: getattr(FleetSettings(), k)
                         for k in ("poll_s", "heartbeat_s", "fence_s")}}


def _stats(xs: list[float]) -> dict[str, Any]:
    if not xs:
        return {"n": 0}
    s = sorted(xs)
    return {"n": len(s), "median": round(statistics.median(s), 2),
            "p95": round(s[min(len(s) - 1, round(0.95 * (len(s) - 1)))], 2),
            "max": round(s[-1], 2), "all": [round(x, 2) for x in xs]}


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, label in (("killed_to_video_at_client_s", "owner killed -> video at the client"),
                       ("killed_to_standby_encoder_up_s", "owner killed -> standby on air")):
        s = f[key]
        out.append((label, f"median {s.get('median')} s, p95 {s.get('p95')} s, max "
                    f"{s.get('max')} s, n={s['n']}", "a few seconds",
                    report.verdict(s.get("p95", 1e9) <= 5) if s["n"] else "n/a"))
    hb = f["settings"]["heartbeat_s"]
    for key, label, target, ok in (
            ("standby_on_air_s", "owner frozen -> standby on air",
             f"2-3x the heartbeat ({hb} s)", lambda x: x <= 3 * hb + 2),
            ("video_at_client_s", "owner frozen -> video at the client",
             f"2-3x the heartbeat ({hb} s)", lambda x: x <= 3 * hb + 3),
            ("gap_after_wake_s", "largest video gap in 10 s after the old owner woke",
             "no stall (< 0.25 s)", lambda x: x < RESUMED_GAP_S),
            ("woken_cpu_s", "the woken worker's CPU in those 10 s", "little", None)):
        s = f.get("frozen", {}).get(key, {"n": 0})
        out.append((label, f"median {s.get('median')} s, p95 {s.get('p95')} s, max "
                    f"{s.get('max')} s, n={s['n']}", target,
                    "n/a" if ok is None or not s["n"] else report.verdict(ok(s["max"]))))
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("killed_to_video_at_client_s", "video back at the client"),
                       ("killed_to_standby_encoder_up_s", "standby's encoder up")):
        ax.plot(f[key].get("all", []), "o-", label=label)
    ax.set(xlabel="round (owner killed)", ylabel="seconds after the kill", ylim=(0, None),
           title=f"avatarcast fleet failover, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_all() -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="avatarcast-fleet-") as tmp:
        return measure(Path(tmp))
