"""``docker/docker-compose.yml`` checked as far as possible without a Docker engine.

1. Valid against the Compose Specification JSON schema (vendored in ``tests/compose_spec/``, the schema Docker
   Compose itself uses), after Compose's own variable interpolation.
2. Project checks: every command of our image is a command of our CLI (or of Airflow's), every variable set on
   our services is one the code reads (or a real Airflow option), every bind mount exists, config is mounted and
   not baked into the image, every long-running service has a health check, the workers' metrics ports match
   their health checks and Prometheus' targets, Kafka is 4.x in KRaft mode, and the Airflow admin password file
   is written where the api-server reads it and where docker/README.md says it is.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.config import ENV_VARS

PROJECT = Path(__file__).resolve().parents[1]
DOCKER = PROJECT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
SCHEMA = PROJECT / "tests" / "compose_spec" / "compose-spec.json"
OUR_IMAGE = "newswatch:local"
CONFIG_MOUNT = "/opt/newswatch/config"

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$")


def _interpolate_str(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-x}``, ``${VAR-x}``, ``${VAR:?e}``, ``${VAR:+x}``."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group("plain"):
            return env.get(m.group("plain"), "")
        b = _BRACED.match(m.group("braced") or "")
        if not b:
            raise ValueError(f"unsupported interpolation {m.group(0)!r}")
        name, op, arg = b.group("name"), b.group("op"), b.group("arg") or ""
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise ValueError(f"required variable {name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""
    return _VAR.sub(sub, text)


def _interpolate(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate_str(node, env)
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    return node


def _compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # YAML anchors and << merges resolved here
    return _interpolate(doc, env or {})


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc)]


def _services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["services"]


def _ours(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _services(doc).items() if s.get("image") == OUR_IMAGE}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of each volume entry (short syntax)."""
    out = []
    for v in service.get("volumes") or []:
        parts = v.split(":")
        out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


# -- 1. the Compose Specification ------------------------------------------------------------------------------

def test_compose_file_is_valid_against_the_compose_spec() -> None:
    assert _schema_errors(_compose()) == []
    with_values = _compose({"SMTP_URL": "smtp://mail:25", "POSTGRES_PASSWORD": "pw", "AIRFLOW_ADMIN_PASSWORD": "x"})
    assert _schema_errors(with_values) == []


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("services", "kafka", "helthcheck"), {"test": ["CMD", "true"]}, "'helthcheck' does not match"),
    (("services", "kibana", "ports"), 5601, "is not of type 'array'"),
    (("services", "postgres", "depends_on"), {"kafka": {"condition": "when_ready"}}, "when_ready"),
    (("services", "worker-index", "restart"), ["always"], "is not of type 'string'"),
])
def test_the_schema_check_catches_mistakes(path: tuple[str, ...], value: Any, expected: str) -> None:
    doc = copy.deepcopy(_compose())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = _schema_errors(doc)
    assert any(expected in e for e in errors), errors


def test_every_variable_the_file_uses_is_documented_in_env_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    example = DOCKER / "env.example"
    documented = {line.split("=", 1)[0] for line in example.read_text().splitlines() if "=" in line
                  and not line.startswith("#")}
    assert used and used == documented, f"only in the compose file: {used - documented}; only in env.example: " \
                                        f"{documented - used}"


# -- 2. project checks --------------------------------------------------------------------------------------------

def test_our_commands_exist_in_our_cli() -> None:
    parser = build_parser()
    checked = 0
    for name, service in _ours(_compose()).items():
        cmd = _command(service)
        if cmd[:3] != ["python", "-m", "pipeline"]:
            continue
        try:
            parser.parse_args(cmd[3:])
        except SystemExit:
            pytest.fail(f"service {name}: {' '.join(cmd)} is not a valid newswatch command")
        checked += 1
    assert checked >= 4  # three workers and the Kibana import


def _names_the_code_reads() -> set[str]:
    names = set(ENV_VARS)
    for path in [*(PROJECT / "pipeline").rglob("*.py"), *(PROJECT / "dags").glob("*.py")]:
        names.update(re.findall(r"[\"']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)[\"']", path.read_text(encoding="utf-8")))
    return names


def _airflow_check(options: list[str], commands: list[list[str]], tmp_path: Path) -> dict[str, list[Any]]:
    """Unknown ``[section] option`` names and invalid ``airflow ...`` commands, asked of Airflow in a subprocess
    (importing Airflow here would fix its AIRFLOW_HOME for the rest of the session)."""
    script = """
import json, sys
from airflow.configuration import conf
from airflow.cli import cli_parser
data = json.load(sys.stdin)
known = {(s, o) for s, v in conf.configuration_description.items() for o in v.get("options", {})}
unknown = [name for name in data["options"] if tuple(name.split(".", 1)) not in known]
bad = []
parser = cli_parser.get_parser()
for cmd in data["commands"]:
    try:
        parser.parse_args(cmd)
    except SystemExit:
        bad.append(cmd)
print(json.dumps({"unknown": unknown, "bad": bad}))
"""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps({"options": options, "commands": commands}),
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, list[Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(importlib.util.find_spec("airflow") is None, reason="apache-airflow is not installed")
def test_airflow_commands_and_options_are_real(tmp_path: Path) -> None:
    options, commands = set(), []
    for service in _ours(_compose()).values():
        for var in _env(service):
            if var.startswith("AIRFLOW__"):
                section, option = var[len("AIRFLOW__"):].lower().split("__", 1)
                options.add(f"{section}.{option}")
        cmd = _command(service)
        if cmd[:1] == ["airflow"]:
            commands.append(cmd[1:])
        elif cmd[:2] == ["bash", "-c"]:
            commands += [line.split()[1:] for line in cmd[2].splitlines() if line.strip().startswith("airflow ")]
        test = (service.get("healthcheck") or {}).get("test") or []
        if test[:1] == ["CMD-SHELL"] and test[1].startswith("airflow "):
            commands.append([a.strip('"') for a in test[1].split()[1:]])
    assert ["db", "migrate"] in commands and ["api-server"] in commands
    result = _airflow_check(sorted(options), commands, tmp_path)
    assert result == {"unknown": [], "bad": []}


@pytest.mark.skipif(importlib.util.find_spec("airflow") is None, reason="apache-airflow is not installed")
def test_the_airflow_check_catches_unknowns(tmp_path: Path) -> None:
    result = _airflow_check(["core.executor", "core.dags_folderz"], [["scheduler"], ["api-servers"]], tmp_path)
    assert result == {"unknown": ["core.dags_folderz"], "bad": [["api-servers"]]}


def test_environment_variables_are_ones_we_read() -> None:
    doc = _compose()
    read = _names_the_code_reads()
    standard = {"PYTHONUNBUFFERED", "AIRFLOW_HOME"}
    for name, service in _ours(doc).items():
        script = " ".join(_command(service))
        for var in _env(service):
            if var.startswith("AIRFLOW__") or var in standard:
                continue  # Airflow's own options: test_airflow_commands_and_options_are_real
            if var.startswith("AIRFLOW_CONN_"):
                conn_id = var[len("AIRFLOW_CONN_"):].lower()
                assert any(conn_id in p.read_text() for p in (PROJECT / "pipeline").glob("airflow_*.py")), \
                    f"service {name}: {var} is a connection the code never uses"
                continue
            assert var in read or f"${{{var}}}" in script, f"service {name}: nothing reads {var}"


def test_bind_mounts_exist_and_config_is_mounted_not_baked() -> None:
    doc = _compose()
    declared = set(doc.get("volumes") or {})
    for name, service in _services(doc).items():
        for source, _target, _ro in _mounts(service):
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), f"service {name}: {source} does not exist (relative to docker/)"
            else:
                assert source in declared, f"service {name}: volume {source} is not declared"
    for name, service in _ours(doc).items():
        assert ("../config", CONFIG_MOUNT, True) in _mounts(service), f"service {name}: config not mounted read-only"
    dockerfile = (DOCKER / "Dockerfile").read_text()
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, flags=re.M)
    sources = [s for line in copied for s in line.split()]
    assert sources and all((PROJECT / s).exists() for s in sources), sources
    assert not any(s.rstrip("/") == "config" for s in sources), "config/ must be mounted, not copied into the image"
    assert f"PIPELINE_CONFIG_DIR={CONFIG_MOUNT}" in dockerfile
    ignored = (PROJECT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git", "config"} <= set(ignored)
    build = _services(doc)["worker-index"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).is_file()


def test_every_long_running_service_has_a_health_check_and_dependencies_wait_for_it() -> None:
    services = _services(_compose())
    for name, service in services.items():
        if service.get("restart") == "no":
            continue  # one-shot: airflow-init, kibana-setup
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"service {name}: no health check"
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services, f"service {name}: depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy: it has no check"
            if cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{name} waits for {dep} to finish: it restarts"


def test_workers_metrics_ports_match_health_checks_and_prometheus() -> None:
    services = _services(_compose())
    workers = {n: s for n, s in services.items() if n.startswith("worker-")}
    assert sorted(workers) == ["worker-alert", "worker-enrich", "worker-index"]
    targets = set()
    for name, service in workers.items():
        cmd = _command(service)
        assert cmd[3:5] == ["worker", name.removeprefix("worker-")]
        port = cmd[cmd.index("--metrics-port") + 1]
        assert cmd[cmd.index("--metrics-address") + 1] == "0.0.0.0"  # reachable by Prometheus in the network
        assert f"127.0.0.1:{port}/livez" in " ".join(service["healthcheck"]["test"])
        targets.add(f"{name}:{port}")
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    scraped = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert scraped == targets


def test_kafka_is_4x_kraft_combined_with_512mb_heap() -> None:
    kafka = _services(_compose())["kafka"]
    image, tag = kafka["image"].split(":")
    assert image == "apache/kafka" and int(tag.split(".")[0]) >= 4
    env = _env(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"] and env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_HEAP_OPTS"] == "-Xmx512M -Xms512M"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a Kafka Uuid
    assert any(target == env["KAFKA_LOG_DIRS"] for _, target, _ in _mounts(kafka))
    for service in _ours(_compose()).values():
        if "KAFKA_BOOTSTRAP_SERVERS" in _env(service):
            assert _env(service)["KAFKA_BOOTSTRAP_SERVERS"] == env["KAFKA_ADVERTISED_LISTENERS"].split("//")[1]


def test_airflow_admin_password_is_written_where_it_is_read_and_documented() -> None:
    services = _services(_compose({"AIRFLOW_ADMIN_PASSWORD": "s3cret"}))
    airflow = {n: s for n, s in services.items() if n.startswith("airflow-")}
    files = {_env(s)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] for s in airflow.values()}
    assert len(files) == 1
    password_file = files.pop()
    folder = str(Path(password_file).parent)

    def volume_at(name: str) -> str:
        return next(src for src, target, _ in _mounts(airflow[name]) if target == folder)

    assert volume_at("airflow-init") == volume_at("airflow-apiserver")  # the same volume, not one per container
    assert f"> {password_file}" in _command(airflow["airflow-init"])[2]
    assert _env(airflow["airflow-init"])["AIRFLOW_ADMIN_PASSWORD"] == "s3cret"
    assert "AIRFLOW_ADMIN_PASSWORD" not in _env(airflow["airflow-apiserver"])  # only where it is written
    readme = (DOCKER / "README.md").read_text()
    assert password_file in readme and "airflow-apiserver" in readme and "AIRFLOW_ADMIN_PASSWORD" in readme


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert _interpolate_str("$$HOSTNAME ${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${SET:+r} ${UNSET+r}", env) \
        == "$HOSTNAME v v d d  r "
    with pytest.raises(ValueError, match="required variable UNSET"):
        _interpolate_str("${UNSET:?must be set}", env)
