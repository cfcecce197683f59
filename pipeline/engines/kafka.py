"""A single-node Apache Kafka 4 broker (KRaft: broker and controller in one JVM) on 127.0.0.1.

Jars: ``kafka-pom.xml`` (``org.apache.kafka:kafka_2.13`` plus an SLF4J 1.7 binding, since the
broker artifact ships no logging backend). On the first start the storage is formatted
(``kafka.tools.StorageTool format`` with a new cluster id and a static controller quorum of
one); every start writes ``server.properties`` from the ports kept in ``engine.json`` and runs
``kafka.Kafka``. Ready = the broker answers an ApiVersions request on its port, which it does
only once it has registered with its controller and opened its listeners.
"""

from __future__ import annotations

import base64
import socket
import struct
import subprocess
import uuid
from pathlib import Path

from ..errors import EngineError
from .maven import POM_DIR
from .process import JavaEngine

__all__ = ["KafkaEngine"]

_API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, 7, 9) + b"newswatch"  # api key, version, correlation id, client id


class KafkaEngine(JavaEngine):
    name = "kafka"
    pom = POM_DIR / "kafka-pom.xml"
    default_port = 9092

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> str:
        port, controller = self.port, self.state["controller_port"]
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        return "".join(f"{k}={v}\n" for k, v in settings.items())

    def _prepare_home(self) -> None:
        self._choose_port("controller_port", 0)
        self.config_file.write_text("# written by pipeline.engines at every start\n" + self._properties(),
                                    encoding="utf-8")
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_id = _cluster_id()
        self.state["cluster_id"] = cluster_id
        assert self._java is not None and self.classpath is not None
        cmd = [self._java, "-Xmx256m", "-cp", str(self.classpath), "kafka.tools.StorageTool", "format",
               f"--cluster-id={cluster_id}", "-c", str(self.config_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)  # noqa: S603
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"== newswatch: formatting storage\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}\n")
        if proc.returncode != 0:
            lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()] or ["no output"]
            raise EngineError(f"kafka: formatting {self.data_dir} failed: {lines[-1][:300]}")

    def _command(self, java: str, classpath: str) -> list[str]:
        return [java, *self._jvm_options(), "-XX:MaxGCPauseMillis=20",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
                "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config=warn",
                "-cp", classpath, "kafka.Kafka", str(self.config_file)]

    def _answers(self) -> bool:
        """One ApiVersions round trip (any answer with our correlation id: even 'unsupported version'
        means the broker processes requests)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as sock:
                sock.sendall(struct.pack(">i", len(_API_VERSIONS_V0)) + _API_VERSIONS_V0)
                head = _recv_exactly(sock, 8)
        except OSError:
            return False
        return head is not None and struct.unpack(">ii", head)[1] == 7


def _cluster_id() -> str:
    """A random Kafka cluster id: a UUID in URL-safe base64 without padding, never starting with '-' (Kafka's
    own rule, so that no command line mistakes it for an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
