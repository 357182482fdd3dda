# The RTMP server of docker-compose.yml: nginx with Debian's RTMP module, the same
# configuration the tests run (deploy/nginx-rtmp.conf.in), listening on 1935.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx libnginx-mod-rtmp \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/nginx-rtmp.conf.in /etc/nginx/rtmp.conf.in
RUN mkdir -p /var/lib/nginx-rtmp \
 && sed -e "s#@PREFIX@#/var/lib/nginx-rtmp#g" -e "s#@LISTEN@#1935#g" \
        /etc/nginx/rtmp.conf.in > /etc/nginx/rtmp.conf
EXPOSE 1935
CMD ["nginx", "-p", "/var/lib/nginx-rtmp", "-c", "/etc/nginx/rtmp.conf"]
