"""Counters aggregated in process and reported through observable instruments.

Why: the SDK's ``Counter.add()`` hashes and copies its attribute dict on every call (about
6 us here). Business counters are hit on request paths with a handful of label values, so
otelkit keeps one cell per attribute set (a float behind a lock, like prometheus_client's
child) and hands the totals to the SDK at collection time through an ``ObservableCounter``.
The SDK still owns temporality, views, export and the cardinality limit; counters lose
only exemplars, which otelkit attaches to histograms, where they are used.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otelkit._internal.overflow import OVERFLOW_ATTRIBUTE, OverflowWarner

logger = logging.getLogger("otelkit")


class Cell:
    """One attribute set's running total."""

    __slots__ = ("_lock", "attributes", "value")

    def __init__(self, attributes: dict[str, str | bool]) -> None:
        self.attributes = attributes
        self.value = 0.0
        self._lock = threading.Lock()

    def add(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount


CellT = TypeVar("CellT")


class LabelledCells(Generic[CellT]):
    """One cell per set of label values, created on first use and bounded by the cardinality
    limit: past it, every new set shares one overflow cell (``otel.metric.overflow=true``, the
    SDK's rule) and the warner says so once. Subclasses say what a cell is."""

    def __init__(
        self, name: str, label_names: Sequence[str], *, cardinality_limit: int, warner: OverflowWarner
    ) -> None:
        self.name = name
        self._label_names = tuple(label_names)
        self._cells: dict[tuple[object, ...], CellT] = {}
        self._lock = threading.Lock()
        self._limit = cardinality_limit
        self._warner = warner
        self._overflow: CellT | None = None

    def _new_cell(self, attributes: dict[str, str | bool]) -> CellT:
        raise NotImplementedError

    def cell(self, values: tuple[object, ...]) -> CellT:
        """The cell for these label values (in ``label_names`` order), created on first use."""
        try:
            found = self._cells.get(values)
        except TypeError:  # an unhashable label value: record it under its string form
            return self.cell(tuple(str(value) for value in values))
        return found if found is not None else self._create(values)

    def _create(self, values: tuple[object, ...]) -> CellT:
        with self._lock:
            found = self._cells.get(values)
            if found is not None:
                return found
            if len(self._cells) >= self._limit:
                if self._overflow is None:
                    self._overflow = self._new_cell({OVERFLOW_ATTRIBUTE: True})
                    self._warner.warn(self.name)
                return self._overflow
            pairs = zip(self._label_names, values, strict=True)
            cell = self._new_cell({k: "" if v is None else str(v) for k, v in pairs})
            self._cells[values] = cell
            return cell

    def all_cells(self) -> list[CellT]:
        """Every cell, the overflow cell last."""
        cells = list(self._cells.values())
        if self._overflow is not None:
            cells.append(self._overflow)
        return cells


class BoundCounter(LabelledCells[Cell]):
    """A counter whose attribute sets are bound once and then cost a dict lookup and a lock.

    >>> requests = BoundCounter(meter, "jobs_total", ("queue",), ...)   # doctest: +SKIP
    >>> requests.cell(("emails",)).add()                               # doctest: +SKIP
    """

    def __init__(
        self,
        meter: Meter,
        name: str,
        label_names: Sequence[str],
        *,
        description: str,
        unit: str = "",
        monotonic: bool = True,
        cardinality_limit: int,
        warner: OverflowWarner,
    ) -> None:
        super().__init__(name, label_names, cardinality_limit=cardinality_limit, warner=warner)
        self._monotonic = monotonic
        create = meter.create_observable_counter if monotonic else meter.create_observable_up_down_counter
        create(name, callbacks=[self._observe], unit=unit, description=description)

    def _new_cell(self, attributes: dict[str, str | bool]) -> Cell:
        return Cell(attributes)

    def add(self, amount: float, values: tuple[object, ...]) -> None:
        if self._monotonic and amount < 0:
            logger.warning("otelkit: %s is a counter and cannot decrease; %r ignored", self.name, amount)
            return
        self.cell(values).add(amount)

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(cell.value, cell.attributes) for cell in self.all_cells()]
