# paramstack gateway: `paramstack serve` only (no torch, no training stack), non-root.
# Build from the repository root:
#   docker build -f deploy/docker/gateway.Dockerfile -t paramstack-gateway .
# Settings come from the environment (PARAMSTACK_*); see docs/deploy.md.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Behind a TLS-inspecting proxy: mount its CA bundle and pass --build-arg PIP_CERT=<path>.
ARG PIP_CERT
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY src /src/src
# Core dependencies + the PostgreSQL driver; pins come from pyproject.toml.
RUN /opt/venv/bin/pip install --no-compile "/src[postgres]" \
    && if /opt/venv/bin/python -c "import torch" 2>/dev/null; then \
         echo "torch must not be in the gateway image" >&2; exit 1; fi

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="paramstack-gateway" \
      org.opencontainers.image.source="https://github.com/paramstack/paramstack" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 paramstack \
    && useradd --system --uid 10001 --gid paramstack --home-dir /var/lib/paramstack \
       --create-home paramstack
COPY --from=build /opt/venv /opt/venv
COPY configs /opt/paramstack/configs
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARAMSTACK_HOME=/var/lib/paramstack \
    PARAMSTACK_HOST=0.0.0.0 \
    PARAMSTACK_PORT=8000 \
    PARAMSTACK_GUARD_POLICY_FILE=/opt/paramstack/configs/policies/default.yaml
WORKDIR /var/lib/paramstack
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PARAMSTACK_PORT', '8000')}/healthz\", timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["paramstack"]
CMD ["serve"]
