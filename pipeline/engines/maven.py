"""Java and Maven for the development engines: find them, and resolve an engine's classpath.

An engine's jars are named by a small pom kept beside this module (``kafka-pom.xml``,
``opensearch-pom.xml``). :func:`resolve_classpath` asks Maven
(``maven-dependency-plugin:build-classpath``, nothing is built) to download them from Maven
Central into the local repository (``~/.m2/repository`` unless ``repo_local`` is given) and
writes the resulting classpath to the cache (``$NEWSWATCH_ENGINE_CACHE``, else
``$XDG_CACHE_HOME/newswatch/engines``, else ``~/.cache/newswatch/engines``), keyed by a hash
of the pom. The next start reads that file and checks that every jar is still there: no Maven
run at all (a missing jar triggers a new resolution).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineUnavailableError

__all__ = ["POM_DIR", "Classpath", "cache_root", "find_java", "find_maven", "java_major", "resolve_classpath"]

log = logging.getLogger(__name__)

POM_DIR = Path(__file__).resolve().parent
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MIN_JAVA = 17
RESOLVE_TIMEOUT = 1200.0


@dataclass
class Classpath:
    """The jars of one engine. ``seconds`` is what resolving took now (0.0 when read from the cache)."""

    jars: list[str]
    seconds: float
    cached: bool

    def __str__(self) -> str:
        return os.pathsep.join(self.jars)


def cache_root() -> Path:
    if os.environ.get("NEWSWATCH_ENGINE_CACHE"):
        return Path(os.environ["NEWSWATCH_ENGINE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newswatch" / "engines"


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` on PATH; must be Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).is_file():
        where = f"JAVA_HOME={home}" if home else "PATH"
        raise EngineUnavailableError(f"no java in {where}: the engines need Java {MIN_JAVA}+ (a JDK) and Maven")
    major = java_major(java)
    if major < MIN_JAVA:
        raise EngineUnavailableError(f"{java} is Java {major}: the engines need Java {MIN_JAVA}+")
    return java


def java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineUnavailableError(f"{java} -version failed: {exc}") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        raise EngineUnavailableError(f"{java} -version: cannot read the version from {out.strip()[:80]!r}")
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise EngineUnavailableError("no mvn on PATH: the engines' jars are resolved from Maven Central by Maven")
    return mvn


def _cache_file(pom: Path, cache_dir: Path) -> Path:
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    return cache_dir / f"{pom.stem}-{digest}.classpath"


def _read_cached(path: Path) -> list[str] | None:
    try:
        jars = [j for j in path.read_text(encoding="utf-8").strip().split(os.pathsep) if j]
    except OSError:
        return None
    return jars if jars and all(Path(j).is_file() for j in jars) else None


def resolve_classpath(pom: Path, *, cache_dir: Path | None = None, repo_local: Path | None = None,
                      log_file: Path | None = None, refresh: bool = False) -> Classpath:
    """The jars ``pom`` depends on (runtime scope), from the cache or resolved by Maven now.

    ``repo_local`` points Maven at another local repository (an empty one measures a cold
    start); ``log_file`` receives Maven's output. Raises EngineUnavailableError (no Maven, no
    network, an artifact missing) with Maven's last error line."""
    target = _cache_file(pom, cache_dir or cache_root())
    if not refresh and repo_local is None:
        jars = _read_cached(target)
        if jars:
            return Classpath(jars, 0.0, cached=True)
    mvn = find_maven()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    cmd = [mvn, "-B", "-q", "-f", str(pom), f"{DEPENDENCY_PLUGIN}:build-classpath",
           f"-Dmdep.outputFile={scratch}", "-Dmdep.includeScope=runtime"]
    if repo_local is not None:
        cmd.append(f"-Dmaven.repo.local={repo_local}")
    log.info("engines: resolving %s with Maven (first start downloads the jars from Maven Central)", pom.name)
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineUnavailableError(f"maven could not resolve {pom.name}: {exc}") from None
    seconds = time.monotonic() - start
    output = (proc.stdout or "") + (proc.stderr or "")
    if log_file is not None:
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{output}\n")
    if proc.returncode != 0 or not scratch.is_file():
        errors = [line for line in output.splitlines() if "ERROR" in line] or output.splitlines() or ["no output"]
        scratch.unlink(missing_ok=True)
        raise EngineUnavailableError(f"maven could not resolve {pom.name} (exit {proc.returncode}): "
                                     f"{_plain(errors[0])[:300]}")
    jars = [j for j in scratch.read_text(encoding="utf-8").strip().split(os.pathsep) if j]
    if repo_local is None:
        os.replace(scratch, target)
    else:
        scratch.unlink()
    log.info("engines: %s resolved: %d jars in %.1f s", pom.name, len(jars), seconds)
    return Classpath(jars, seconds, cached=False)


def _plain(line: str) -> str:
    """``line`` without ANSI colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
