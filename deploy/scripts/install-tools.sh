#!/usr/bin/env bash
# System tools for `make deploy-check` / `make deploy-smoke` on Debian/Ubuntu (run as root):
# promtool and amtool (Debian's prometheus packages), podman + runc (daemonless image builds), mmdebstrap
# (the stand-in python:3.11-slim base when registries cannot be reached).
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# promtool and amtool only: stop the servers the packages may have started.
if command -v systemctl >/dev/null; then
    systemctl stop prometheus prometheus-alertmanager 2>/dev/null || true
fi
echo "promtool: $(promtool --version 2>&1 | head -n 1)"
echo "podman: $(podman --version)"
