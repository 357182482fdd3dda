# avatarcast as a container: FFmpeg, espeak-ng and the Python package. RabbitMQ and the RTMP
# server are outside; point AVATARCAST_BROKER__URL and AVATARCAST_OUTPUT__RTMP_URLS at them.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
COPY src ./src
RUN pip install --no-cache-dir --no-deps . \
 && useradd --system --home /app avatarcast \
 && mkdir -p /app/var && chown avatarcast /app/var
USER avatarcast

ENV AVATARCAST_HEALTH__HOST=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
# tini forwards SIGTERM to the daemon, which drains and ends the stream cleanly.
ENTRYPOINT ["tini", "--", "avatarcast"]
CMD ["run"]
