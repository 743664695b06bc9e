"""Download the Apache Kafka broker jars from Maven Central, once per machine."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from metricflow.devservices._common import (
    DevServiceError,
    cache_dir,
    file_lock,
    repo_root,
    run_checked,
)

_DONE_MARKER = ".complete"

# Quiet but useful: start/stop and problems; the long config dumps are skipped.
_LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.kafkacfg.name = kafka.server.KafkaConfig
logger.kafkacfg.level = WARN
logger.utils.name = org.apache.kafka.common.utils.AppInfoParser
logger.utils.level = WARN
"""


def kafka_pom() -> Path:
    """Return the pom.xml that pins the Kafka broker version (`METRICFLOW_KAFKA_POM` overrides)."""
    override = os.environ.get("METRICFLOW_KAFKA_POM")
    if override:
        return Path(override)
    root = repo_root()
    if root is None:
        raise DevServiceError(
            "deploy/local/kafka/pom.xml not found: run from a metricflow checkout "
            "or set METRICFLOW_KAFKA_POM"
        )
    return root / "deploy" / "local" / "kafka" / "pom.xml"


def kafka_libs_dir(pom: Path | None = None) -> Path:
    """Return the cache dir for the jars of this pom (a changed pom gets a new dir)."""
    pom = pom or kafka_pom()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"kafka-{digest}" / "libs"


def ensure_kafka_libs(pom: Path | None = None, *, quiet: bool = True) -> Path:
    """Fetch the broker jars with Maven unless already cached; return the libs dir.

    Safe to call from several processes at once: one downloads, the others wait.
    """
    pom = pom or kafka_pom()
    libs = kafka_libs_dir(pom)
    if (libs / _DONE_MARKER).is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevServiceError("Maven (`mvn`) is required to fetch the Kafka broker jars")
    with file_lock(libs.parent / ".lock"):
        if (libs / _DONE_MARKER).is_file():
            return libs
        staging = libs.parent / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        argv = [
            mvn,
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        if quiet:
            argv.insert(1, "-q")
        run_checked(argv, what="Fetching Kafka jars with Maven", timeout=900)
        jars = list(staging.glob("kafka_2.13-*.jar"))
        if not jars:
            raise DevServiceError(f"Maven ran but no kafka_2.13 jar is in {staging}")
        (staging / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        (staging / _DONE_MARKER).write_text(f"{time.monotonic() - started:.1f}s\n")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs


def kafka_version(libs: Path) -> str:
    """Return the Kafka version of the cached jars, e.g. "4.4.0"."""
    for jar in libs.glob("kafka_2.13-*.jar"):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    raise DevServiceError(f"no kafka_2.13 jar in {libs}")


def cds_archive(libs: Path) -> Path | None:
    """Return where the broker's class-data-sharing archive lives, or None if disabled.

    A dynamic CDS archive of the broker's loaded classes cuts JVM startup by about
    1.3 s here. It is keyed by the java binary so a JDK upgrade makes a new one.
    `METRICFLOW_KAFKA_CDS=0` disables it.
    """
    if os.environ.get("METRICFLOW_KAFKA_CDS", "1") == "0":
        return None
    java = shutil.which("java")
    if java is None:
        return None
    real = Path(java).resolve()
    key = hashlib.sha256(f"{real}:{real.stat().st_mtime_ns}".encode()).hexdigest()[:10]
    return libs.parent / f"broker-{key}.jsa"
