"""pytest plugin (entry point ``pytest11``): the ``otelkit_capture`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otelkit.testing import MetricsCapture, capture


@pytest.fixture
def otelkit_capture() -> Iterator[MetricsCapture]:
    """Fresh in-memory metrics and spans for one test; `otelkit.init()` inside the test feeds them."""
    with capture() as captured:
        yield captured
