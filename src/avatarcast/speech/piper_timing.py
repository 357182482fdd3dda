"""Piper voices with their phoneme durations exposed (piper's own model patch), made once per
voice file in a child process and kept on disk.

The patch parses and re-serialises the whole ONNX model (60 MB for a medium voice); done in the
daemon it holds the interpreter lock for long enough to make the pacer miss frames. A child
process does it instead; the daemon waits without holding the lock and then loads the patched
file as it would the original.

  python -m avatarcast.speech.piper_timing MODEL OUT   (what the child runs)
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_CHILD_TIMEOUT_S = 120


def timed_model(model: Path, cache_dir: Path) -> Path:
    """The patched copy of `model` in `cache_dir` (made now if missing), or `model` itself when
    it cannot be patched: then speech comes without phoneme timings and the mouth follows the
    sound instead."""
    st = model.stat()
    out = cache_dir / f"{model.stem}-{st.st_size}-{st.st_mtime_ns}.timed.onnx"
    if out.is_file():
        return out
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(model), str(out)],
            capture_output=True, text=True, timeout=_CHILD_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("piper voice %s without phoneme timings: %s", model.name, exc)
        return model
    if done.returncode != 0 or not out.is_file():
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        log.warning("piper voice %s without phoneme timings: %s", model.name, reason)
        return model
    return out


def _patch(model: Path, out: Path) -> int:
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as exc:
        print(f"the onnx package is missing ({exc})", file=sys.stderr)
        return 3
    proto = onnx.load(str(model))
    try:
        add_alignment_output(proto)
    except ValueError as exc:  # no duration tensor, or already an output
        print(f"cannot expose phoneme durations: {exc}", file=sys.stderr)
        return 4
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    onnx.save(proto, str(tmp))
    tmp.replace(out)  # atomic: a reader never sees half a model
    return 0


if __name__ == "__main__":
    sys.exit(_patch(Path(sys.argv[1]), Path(sys.argv[2])))
