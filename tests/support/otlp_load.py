"""Raw OTLP metric load: pre-encoded requests sent as fast as a gRPC channel takes them.

For the collector's intake benchmark and its overload test, where the SDK's own encoding
would be the bottleneck instead of the collector.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2


def _attribute(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def counter_request(service: str, name: str, series: list[str], value: float, padding: int = 0) -> bytes:
    """One cumulative monotonic sum, one datapoint per ``series`` label value."""
    now = time.time_ns()
    extra = [_attribute("padding", "x" * padding)] if padding else []
    points = [
        metrics_pb2.NumberDataPoint(
            attributes=[_attribute("series", label), *extra],
            start_time_unix_nano=now - 10**9,
            time_unix_nano=now,
            as_double=value,
        )
        for label in series
    ]
    metric = metrics_pb2.Metric(
        name=name, sum=metrics_pb2.Sum(data_points=points, aggregation_temporality=2, is_monotonic=True)
    )
    resource = resource_pb2.Resource(attributes=[_attribute("service.name", service)])
    scope = metrics_pb2.ScopeMetrics(metrics=[metric])
    request = metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[metrics_pb2.ResourceMetrics(resource=resource, scope_metrics=[scope])]
    )
    return request.SerializeToString()


@contextlib.contextmanager
def metrics_client(grpc_endpoint: str) -> Iterator[Callable[[bytes], None]]:
    """``send(payload)`` over one channel to ``http://host:port``; raises grpc.RpcError when refused."""
    channel = grpc.insecure_channel(grpc_endpoint.removeprefix("http://"))
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        request_serializer=lambda payload: payload,
        response_deserializer=metrics_service_pb2.ExportMetricsServiceResponse.FromString,
    )
    try:
        yield lambda payload: export(payload, timeout=10)
    finally:
        channel.close()
