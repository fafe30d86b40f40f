"""The app each HTTP benchmark variant serves: one trivial endpoint, instrumented five ways.

BENCH_VARIANT=otelkit-full uvicorn bench.http_app:app
"""

from __future__ import annotations

import os

from fastapi import FastAPI

VARIANT = os.environ.get("BENCH_VARIANT", "bare")
OTLP = os.environ.get("BENCH_OTLP_ENDPOINT")  # a collector; every exporting variant sends there
SENTRY_DSN = os.environ.get("BENCH_SENTRY_DSN")  # otelkit-full-sentry: a Sentry ingest double (bench/bench_sentry.py)

app = FastAPI()


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


def _plain_opentelemetry() -> None:
    """What a team gets from the OTel docs: global SDK providers, OTLP, FastAPIInstrumentor."""
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider()
    if OTLP:
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=OTLP, insecure=True)))
    readers = [PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=OTLP, insecure=True))] if OTLP else []
    metrics.set_meter_provider(MeterProvider(metric_readers=readers))
    trace.set_tracer_provider(tracer_provider)
    FastAPIInstrumentor.instrument_app(app)


def _sentry_sdk_by_its_docs() -> None:
    """The peers of otelkit's bridge, beside otelkit's tracing: sentry-sdk's own transactions
    (``sentry-native``), or its OTLPIntegration on the global provider (``sentry-otlp``)."""
    import sentry_sdk

    if VARIANT == "sentry-native":
        sentry_sdk.init(dsn=SENTRY_DSN, traces_sample_rate=1.0)
    else:
        from sentry_sdk.integrations.otlp import OTLPIntegration

        sentry_sdk.init(dsn=SENTRY_DSN, integrations=[OTLPIntegration()])


if VARIANT == "instrumentator":
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)
elif VARIANT == "otel-plain":
    _plain_opentelemetry()
elif VARIANT in ("otelkit-metrics", "otelkit-full", "otelkit-full-sentry", "sentry-native", "sentry-otlp"):
    import otelkit

    otelkit.init(
        app,
        service={"name": "bench"},
        otlp={"endpoint": OTLP} if OTLP else {},
        tracing={"enabled": VARIANT != "otelkit-metrics", "sample_ratio": 1.0},
        sentry={"dsn": SENTRY_DSN, "traces_sample_rate": 1.0} if VARIANT == "otelkit-full-sentry" else {},
    )
    if VARIANT.startswith("sentry-"):
        _sentry_sdk_by_its_docs()
elif VARIANT != "bare":
    raise SystemExit(f"unknown BENCH_VARIANT {VARIANT!r}")
