"""Real engines for development and tests: Apache Kafka 4 and OpenSearch 2.19 from Maven Central.

No Docker: each engine is one JVM whose jars Maven resolves from a small pom kept in this
package (see :mod:`pipeline.engines.maven`), started, probed, stopped and restarted by
:class:`~pipeline.engines.process.JavaEngine`. The tests start their own instances on free
ports with data in temporary directories; ``make kafka`` / ``make opensearch``
(``python -m pipeline.engines kafka|opensearch``) run one in the foreground. They need Java 17+
(a JDK) and Maven, and are for development and tests, not production.
"""

from __future__ import annotations

from .kafka import KafkaEngine
from .maven import Classpath, cache_root, find_java, find_maven, resolve_classpath
from .opensearch import OpenSearchEngine
from .process import JavaEngine, die_with_parent, free_port, port_is_free

__all__ = [
    "ENGINES",
    "Classpath",
    "JavaEngine",
    "KafkaEngine",
    "OpenSearchEngine",
    "cache_root",
    "die_with_parent",
    "find_java",
    "find_maven",
    "free_port",
    "port_is_free",
    "resolve_classpath",
]

#: engine name -> class
ENGINES: dict[str, type[JavaEngine]] = {"kafka": KafkaEngine, "opensearch": OpenSearchEngine}
