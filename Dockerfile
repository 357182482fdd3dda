# avatarcast as a container: FFmpeg, espeak-ng and the Python package, run as a non-root user.
# RabbitMQ and the RTMP server are outside (docker-compose.yml runs both beside it); point
# AVATARCAST_BROKER__URL and AVATARCAST_OUTPUT__RTMP_URLS at them.
#
#   docker build -t avatarcast .                          CPU image (the lite animator)
#   docker build -t avatarcast:cuda --build-arg VARIANT=cuda .
#                                                         MuseTalk on an NVIDIA GPU: run it with
#                                                         --gpus all and the weights in /app/models
FROM python:3.11-slim-bookworm

ARG VARIANT=cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng fonts-dejavu-core tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt pyproject.toml README.md ./
# The same steps as scripts/install-deps.sh: torch first and pinned (the CPU build from
# PyTorch's CPU index, or PyPI's build, which brings CUDA), then the rest.
RUN case "$VARIANT" in \
      cpu) pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu ;; \
      cuda) pip install --no-cache-dir torch==2.13.0 ;; \
      *) echo "VARIANT must be cpu or cuda" >&2; exit 1 ;; \
    esac \
 && pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
COPY src ./src
RUN pip install --no-cache-dir --no-deps . \
 && useradd --system --home /app avatarcast \
 && mkdir -p /app/var /app/models && chown avatarcast /app/var /app/models
USER avatarcast

ENV AVATARCAST_HEALTH__HOST=0.0.0.0
VOLUME ["/app/var", "/app/models"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
# tini forwards SIGTERM to the daemon, which drains and ends the stream cleanly.
ENTRYPOINT ["tini", "--", "avatarcast"]
CMD ["run"]
