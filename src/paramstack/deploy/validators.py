"""One function per offline validator; each returns the problems it found (empty = valid).

They take the artefact as a path or as parsed documents, so the tests can plant one error in a
copy of a valid artefact and assert that the same function rejects it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from paramstack.deploy.metrics import unknown_metrics
from paramstack.deploy.validator_binaries import compose_binary, run, tool

KUBE_VERSION = "1.31.0"
# Custom resources have no schema in kubernetes-validate (it passes them): these do.
CRD_SCHEMAS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "serving.kserve.io/inferenceservice_v1beta1",
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): "serving.kserve.io/servingruntime_v1alpha1",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com/podmonitor_v1",
}


def _failed(code: int, out: str, what: str) -> list[str]:
    return [] if code == 0 else [f"{what}: {out or f'exit status {code}'}"]


def compose(compose_file: Path, env_file: Path) -> list[str]:
    code, out = run([compose_binary(), "--env-file", str(env_file), "-f", str(compose_file),
                     "config", "-q"])  # fmt: skip
    return _failed(code, out, f"compose {compose_file.name}")


def helm(
    chart: Path, values: dict[str, Any] | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """Lint (strict), schema-check and render offline; returns problems and rendered docs."""
    import helm_python

    problems: list[str] = []
    report = helm_python.lint(str(chart), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems += [f"helm lint: {m['path']}: {m['error']}" for m in report["messages"]
                 if m["severity"] >= 2]  # fmt: skip
    problems += [f"helm lint: {e}" for e in report.get("errors") or []]
    loaded = helm_python.Chart.load(str(chart))
    try:
        loaded.validate_schema(values)
        rendered = loaded.render(values, name="paramstack", namespace="paramstack")
    except helm_python.HelmError as exc:
        return [*problems, f"helm values/render: {exc}"], []
    docs = [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return problems, docs


def kubernetes(docs: list[dict[str, Any]], crd_dir: Path) -> list[str]:
    """Core kinds strictly against the Kubernetes schemas, custom kinds against the CRDs."""
    import kubernetes_validate

    problems: list[str] = []
    for doc in docs:
        name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        crd = CRD_SCHEMAS.get((doc.get("apiVersion", ""), doc.get("kind", "")))
        if crd is not None:
            problems += [f"{name}: {p}" for p in custom_resource(doc, crd_dir / f"{crd}.json")]
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name}: no schema for {doc.get('apiVersion')} (unknown kind?)")
    return problems


def custom_resource(doc: dict[str, Any], schema: Path) -> list[str]:
    """Every violation of the CRD schema (``additionalProperties: false`` catches typos).

    The same jsonschema engine check-jsonschema runs, in-process with the validator cached:
    the KServe schema is 1.3 MB and re-checking it against the metaschema per document took
    10-20 s on the shared CI machine."""
    if not schema.is_file():
        return [f"CRD schema {schema} missing"]
    return [
        f"{'.'.join(map(str, err.absolute_path)) or '<root>'}: {err.message}"
        for err in _crd_validator(schema).iter_errors(doc)
    ]


@functools.cache
def _crd_validator(schema: Path) -> Any:
    import jsonschema

    contents = _python_patterns(json.loads(schema.read_text()))
    cls = jsonschema.validators.validator_for(contents)
    return cls(contents, format_checker=cls.FORMAT_CHECKER)


def _python_patterns(node: Any) -> Any:
    """CRD patterns are Go RE2, which allows an inline flag mid-pattern (``^(?i)warn$``);
    Python wants it first. Everything else in them is valid Python syntax."""
    if isinstance(node, dict):
        fixed = {k: _python_patterns(v) for k, v in node.items()}
        pattern = fixed.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern and not pattern.startswith("(?i)"):
            fixed["pattern"] = "(?i)" + pattern.replace("(?i)", "")
        return fixed
    if isinstance(node, list):
        return [_python_patterns(v) for v in node]
    return node


def promtool(rules: Path, tests: Path) -> list[str]:
    problems = _failed(*run([tool("promtool"), "check", "rules", str(rules)]), "promtool check")
    if not problems:
        problems += _failed(*run([tool("promtool"), "test", "rules", str(tests)]), "promtool test")
    return problems


def alertmanager(config: Path) -> list[str]:
    return _failed(*run([tool("amtool"), "check-config", str(config)]), "amtool check-config")


def rule_metrics(rules: Path, exported: set[str]) -> list[str]:
    """Alerts read series the gateway exports (a renamed metric = an alert that never fires)."""
    data = yaml.safe_load(rules.read_text())
    exprs = {
        f"alert {rule.get('alert') or rule.get('record')}": str(rule["expr"])
        for group in data.get("groups", [])
        for rule in group.get("rules", [])
    }
    return unknown_metrics(exprs, exported)


def actionlint(workflows: Path) -> list[str]:
    files = sorted(str(p) for p in workflows.glob("*.y*ml"))
    if not files:
        return [f"no workflows in {workflows}"]
    return _failed(*run([tool("actionlint"), "-no-color", *files]), "actionlint")


def hadolint(dockerfiles: list[Path]) -> list[str]:
    return _failed(*run([tool("hadolint"), *map(str, dockerfiles)]), "hadolint")


def yamllint(root: Path, paths: list[Path], config: Path) -> list[str]:
    """Paths relative to ``root``, where the config's ``ignore`` patterns are anchored."""
    argv = [tool("yamllint"), "-s", "-c", str(config), *(str(p.relative_to(root)) for p in paths)]
    return _failed(*run(argv, cwd=root), "yamllint")


def shellcheck(scripts: list[Path]) -> list[str]:
    return _failed(*run([tool("shellcheck"), *map(str, scripts)]), "shellcheck")
