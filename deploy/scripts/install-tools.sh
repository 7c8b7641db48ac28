#!/usr/bin/env bash
# System tools for `make deploy-check` / `make deploy-smoke` on Debian/Ubuntu (run as root):
# promtool (Debian's prometheus package), podman + runc (daemonless image builds), mmdebstrap
# (the stand-in python:3.11-slim base when registries cannot be reached).
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# promtool only: stop the server the package may have started.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
fi
echo "promtool: $(promtool --version 2>&1 | head -n 1)"
echo "podman: $(podman --version)"
