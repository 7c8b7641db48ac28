# paramstack jobs: training, export and ECG pipelines (`paramstack ecg train`, `quickstart`, ...).
# CPU torch by default; build on a CUDA base image with a CUDA torch for GPU nodes.
#   docker build -f deploy/docker/jobs.Dockerfile -t paramstack-jobs .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Behind a TLS-inspecting proxy: mount its CA bundle and pass --build-arg PIP_CERT=<path>.
ARG PIP_CERT
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/venv/bin/pip install --no-compile --extra-index-url "${TORCH_INDEX_URL}" \
    "/src[postgres,train,ecg,llm]"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="paramstack-jobs" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 paramstack \
    && useradd --system --uid 10001 --gid paramstack --home-dir /var/lib/paramstack \
       --create-home paramstack
COPY --from=build /opt/venv /opt/venv
COPY configs /opt/paramstack/configs
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARAMSTACK_HOME=/var/lib/paramstack
WORKDIR /opt/paramstack
USER 10001:10001
ENTRYPOINT ["paramstack"]
CMD ["--help"]
