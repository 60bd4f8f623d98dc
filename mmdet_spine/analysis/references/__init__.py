"""Reference workers of the benchmark, run as scripts by the references' interpreters; only
``latency_worker`` (standard library at import time) is imported by the benchmark itself."""
