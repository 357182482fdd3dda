"""`avatarcast models download`: the public MuseTalk v1.5 weights, into face.models_dir in the
layout weights.py loads. Downloads resume where they stopped; each large file is checked
against the SHA-256 the hub publishes for it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ...source import file_sha256

log = logging.getLogger(__name__)

# (hub repository, file in it, folder under models_dir the file lands in)
FILES = (
    ("TMElyralab/MuseTalk", "musetalkV15/musetalk.json", "."),
    ("TMElyralab/MuseTalk", "musetalkV15/unet.pth", "."),
    ("stabilityai/sd-vae-ft-mse", "config.json", "sd-vae"),
    ("stabilityai/sd-vae-ft-mse", "diffusion_pytorch_model.bin", "sd-vae"),
    ("openai/whisper-tiny", "config.json", "whisper"),
    ("openai/whisper-tiny", "pytorch_model.bin", "whisper"),
    ("openai/whisper-tiny", "preprocessor_config.json", "whisper"),
    ("ManyOtherFunctions/face-parse-bisent", "79999_iter.pth", "face-parse-bisent"),
)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(Exception):
    """A weight file could not be fetched or failed its checksum."""


def download(models_dir: Path, endpoint: str | None = None) -> list[Path]:
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    except ImportError as exc:
        raise DownloadError(f"huggingface_hub is not installed: {exc}") from None
    fetched = []
    for repo, filename, folder in FILES:
        target = (models_dir / folder).resolve()
        what = f"{repo}/{filename}"
        try:
            meta = get_hf_file_metadata(hf_hub_url(repo, filename, endpoint=endpoint))
            path = Path(hf_hub_download(repo, filename, local_dir=target, endpoint=endpoint))
        # The hub client raises its HTTP library's own errors (connection, DNS, HTTP status);
        # whatever it raises, this boundary turns it into one clear message.
        except Exception as exc:
            raise DownloadError(
                f"cannot download {what}: {type(exc).__name__}: {str(exc).splitlines()[0]}. "
                "Without internet access, copy the files into "
                f"{models_dir} by hand (layout in models/README.md), or set HF_ENDPOINT "
                "to a reachable mirror."
            ) from None
        expected = (meta.etag or "").strip('"')
        if SHA256.match(expected):
            actual = file_sha256(path)
            if actual != expected:
                path.unlink(missing_ok=True)
                raise DownloadError(
                    f"{what}: checksum mismatch (got {actual[:12]}…, the hub says "
                    f"{expected[:12]}…); the file was removed, run the command again"
                )
        log.info("%s -> %s", what, path)
        fetched.append(path)
    return fetched
