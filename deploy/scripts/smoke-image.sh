#!/usr/bin/env bash
# Container smoke test (root, podman, no registry): build the gateway image on a stand-in
# python:3.11-slim made from Debian packages, check torch is absent, run it against a home with
# the trained demo model, then /healthz, the container HEALTHCHECK, a real prediction, and a
# clean stop (exit 0, lifespan shutdown logged).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
IMAGE=localhost/paramstack-gateway:smoke
NAME=paramstack-smoke-$$
work=$(mktemp -d)
cleanup() {
    [[ -n "${trainer:-}" ]] && kill "${trainer}" 2>/dev/null || true
    podman rm -f "${NAME}" >/dev/null 2>&1 || true
    rm -rf "${work}"
}
trap cleanup EXIT

# Default ulimits the container may set here: never above the caller's own hard limits.
nofile=$(( $(ulimit -Hn) < 4096 ? $(ulimit -Hn) : 4096 ))
nproc=$(( $(ulimit -Hu) < 4096 ? $(ulimit -Hu) : 4096 ))
cat >"${work}/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="${work}/containers.conf"

SECONDS=0
# The demo model trains on the host while the image builds (the two overlap on 2 cores).
home="${work}/home"
PARAMSTACK_HOME="${home}" "${PYTHON}" -m paramstack quickstart --epochs 2 --no-llm >"${work}/quickstart.log" 2>&1 &
trainer=$!

if ! podman image exists python:3.11-slim; then
    echo "== stand-in python:3.11-slim from Debian packages (mmdebstrap)"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
        --format=tar bookworm "${work}/base.tar"
    podman import --quiet "${work}/base.tar" localhost/python:3.11-slim >/dev/null
fi

echo "== build (${SECONDS}s)"
ca=/etc/ssl/certs/ca-certificates.crt
podman build --quiet --pull=never --format docker --network host \
    --volume "${ca}:/etc/ssl/host-ca.crt:ro" --build-arg PIP_CERT=/etc/ssl/host-ca.crt \
    -f deploy/docker/gateway.Dockerfile -t "${IMAGE}" . >/dev/null
if podman run --rm --no-healthcheck --entrypoint python "${IMAGE}" -c "import importlib.util as u; exit(u.find_spec('torch') is None)"; then
    echo "FAIL: torch is installed in the gateway image" >&2
    exit 1
fi
test "$(podman image inspect --format '{{.Config.User}}' "${IMAGE}")" = "10001:10001"

echo "== demo model (${SECONDS}s)"
if ! wait "${trainer}"; then
    cat "${work}/quickstart.log" >&2
    exit 1
fi
chmod -R a+rwX "${work}"
port=$("${PYTHON}" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")

echo "== run on :${port} (${SECONDS}s)"
# No systemd here for podman's healthcheck timers: the HEALTHCHECK is run by hand below.
podman run -d --name "${NAME}" --network host --health-interval disable -e PARAMSTACK_HOME="${home}" \
    -e PARAMSTACK_PORT="${port}" -v "${home}:${home}" "${IMAGE}" >/dev/null 2>"${work}/run.err"
"${PYTHON}" deploy/scripts/smoke_requests.py "http://127.0.0.1:${port}"
podman healthcheck run "${NAME}"

echo "== stop (${SECONDS}s)"
podman stop --time 30 "${NAME}" >/dev/null 2>>"${work}/run.err"
code=$(podman inspect --format '{{.State.ExitCode}}' "${NAME}")
logs=$(podman logs "${NAME}" 2>&1)
if [[ "${code}" != 0 ]] || ! grep -q "Application shutdown complete" <<<"${logs}"; then
    echo "FAIL: exit ${code}; logs:" >&2
    echo "${logs}" >&2
    exit 1
fi
echo "container smoke test passed in ${SECONDS}s"
