#!/usr/bin/env bash
# CRD JSON schemas (KServe, Prometheus Operator) from datreeio/CRDs-catalog at a fixed commit,
# for CI runners that lack the shared copy. Usage: fetch-crd-schemas.sh DEST_DIR
set -euo pipefail
dest=${1:?destination directory}
commit=7b1e26ef9deea49293714d204c1a2270aab1178f
base="https://raw.githubusercontent.com/datreeio/CRDs-catalog/${commit}"
for path in \
    serving.kserve.io/inferenceservice_v1beta1.json \
    serving.kserve.io/servingruntime_v1alpha1.json \
    serving.kserve.io/clusterservingruntime_v1alpha1.json \
    monitoring.coreos.com/prometheusrule_v1.json \
    monitoring.coreos.com/servicemonitor_v1.json \
    monitoring.coreos.com/podmonitor_v1.json; do
    mkdir -p "${dest}/$(dirname "${path}")"
    curl -fsSL --retry 3 -o "${dest}/${path}" "${base}/${path}"
done
