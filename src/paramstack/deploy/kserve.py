"""Canary share of a KServe InferenceService through the Kubernetes API (official client).

KServe semantics: ``canaryTrafficPercent`` routes that share to the latest revision and the
rest to the last one rolled out; 100 promotes the canary, 0 rolls it back. Only this field is
changed (a JSON merge patch), so a concurrent edit of anything else is left alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput, NotFound, UpstreamError

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


@dataclass(frozen=True)
class CanaryState:
    name: str
    namespace: str
    canary_percent: int | None
    ready: bool
    latest_ready_revision: str | None
    previous_revision: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def api(kubeconfig: Path | None = None, context: str | None = None) -> Any:
    """CustomObjectsApi from a kubeconfig file, else the pod's service account."""
    from kubernetes import client, config

    if kubeconfig is not None or context is not None:
        cfg = client.Configuration()
        config.load_kube_config(
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            client_configuration=cfg,
        )
        return client.CustomObjectsApi(client.ApiClient(cfg))
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def _state(obj: dict[str, Any]) -> CanaryState:
    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status") or {}
    predictor = (status.get("components") or {}).get("predictor") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return CanaryState(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        canary_percent=(spec.get("predictor") or {}).get("canaryTrafficPercent"),
        ready=ready,
        latest_ready_revision=predictor.get("latestReadyRevision"),
        previous_revision=predictor.get("previousRolledoutRevision"),
    )


def _call(fn: Any, name: str, namespace: str, **kwargs: Any) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    try:
        result: dict[str, Any] = fn(GROUP, VERSION, namespace, PLURAL, name, **kwargs)
        return result
    except ApiException as exc:
        if exc.status == 404:
            raise NotFound(f"InferenceService {namespace}/{name} not found") from exc
        raise UpstreamError(f"Kubernetes API: HTTP {exc.status} {exc.reason}") from exc


def status(custom: Any, name: str, namespace: str) -> CanaryState:
    return _state(_call(custom.get_namespaced_custom_object, name, namespace))


def set_canary(custom: Any, name: str, namespace: str, percent: int) -> CanaryState:
    if not 0 <= percent <= 100:
        raise InvalidInput("the canary share is a percentage from 0 to 100", param="share")
    patch = {"spec": {"predictor": {"canaryTrafficPercent": percent}}}
    obj = _call(custom.patch_namespaced_custom_object, name, namespace, body=patch)
    return _state(obj)
