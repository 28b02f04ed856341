# tollway: slim, non-root, health-checked on the status listener's /status.
#   docker build -t tollway:0.1.0 .
#   docker run -p 8000:8000 -p 8100:8100 -v $PWD/examples:/config:ro tollway:0.1.0 \
#     tollway start --config /config/gateway-noplugins.yaml
# deploy/compose/docker-compose.yml runs the seed's whole stack from this image.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tollway ./tollway
# A wheel, so the runtime stage gets no compiler and no source tree.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOLLWAY_PREFIX=/var/lib/tollway \
    TOLLWAY_PROXY_LISTEN="0.0.0.0:8000" \
    TOLLWAY_STATUS_LISTEN="0.0.0.0:8100" \
    TOLLWAY_ADMIN_LISTEN="127.0.0.1:8001"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 tollway \
    && useradd --system --uid 10001 --gid tollway --home-dir /var/lib/tollway \
       --create-home --shell /usr/sbin/nologin tollway
USER 10001:10001
WORKDIR /var/lib/tollway
# 8000 proxy, 8443 proxy TLS, 8001 admin, 8002 admin GUI (when it exists), 8100 status.
EXPOSE 8000 8443 8001 8100
# No curl in the slim image: the interpreter is already there. /status answers 200 while the
# node runs; the status listener is the one probes use (no admin token needed).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import os,sys,urllib.request; p=os.environ.get('TOLLWAY_STATUS_PORT','8100'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{p}/status', timeout=4).status == 200 else 1)"]
# SIGTERM drains (graceful_timeout, default 10 s); give `docker stop -t` at least 15.
STOPSIGNAL SIGTERM
CMD ["tollway", "start"]
