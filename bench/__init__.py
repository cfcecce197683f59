"""newswatch benchmarks, run with ``python -m bench`` (``make bench``).

Each module exposes ``run() -> dict`` that prints its own report and returns it:
``bench.ingest`` (pipeline vs bare trafilatura), ``bench.extract_quality`` (extraction
quality and speed, fast vs full), ``bench.polling`` (10,000 feeds at steady state against the
bare conditional GETs, publication-to-alert latency), and, when present, ``bench.bus_index`` and ``bench.tagging``.
"""
