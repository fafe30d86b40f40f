"""Find series by Prometheus name and labels, with failures that show what does exist."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float

    def __str__(self) -> str:
        labels = ",".join(f'{key}="{value}"' for key, value in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}} {self.value:g}"


@dataclass(frozen=True)
class HistogramSnapshot:
    """One histogram series: ``buckets`` maps each upper bound (``math.inf`` last) to its cumulative count."""

    count: float
    sum: float
    buckets: dict[float, float] = field(default_factory=dict)


class SeriesQuery:
    """Queries over `samples()`, which subclasses provide. Label values compare as strings."""

    def samples(self) -> list[Sample]:
        raise NotImplementedError

    def series(self, name: str, **labels: object) -> list[Sample]:
        """Samples named exactly ``name`` whose labels include ``labels``."""
        wanted = {key: str(value) for key, value in labels.items()}
        return [s for s in self.samples() if s.name == name and wanted.items() <= s.labels.items()]

    def value(self, name: str, **labels: object) -> float:
        """The value of the one series that matches; fails if none or several do."""
        return self._one(name, labels).value

    def total(self, name: str, **labels: object) -> float:
        """The sum over every matching series (0 when none match), like PromQL's ``sum()``."""
        return sum(sample.value for sample in self.series(name, **labels))

    def histogram(self, name: str, **labels: object) -> HistogramSnapshot:
        """Count, sum and cumulative buckets of the one histogram series that matches."""
        count = self._one(f"{name}_count", labels)
        identity = count.labels
        total = self._one(f"{name}_sum", identity)
        buckets = {
            float(sample.labels["le"]): sample.value
            for sample in self.series(f"{name}_bucket", **identity)
            if {k: v for k, v in sample.labels.items() if k != "le"} == identity
        }
        return HistogramSnapshot(count.value, total.value, dict(sorted(buckets.items())))

    def assert_absent(self, name: str, **labels: object) -> None:
        """Fail if any series named ``name`` with these labels exists."""
        found = self.series(name, **labels)
        if found:
            raise AssertionError(f"expected no series {_selector(name, labels)}, found:\n" + _listing(found))

    def _one(self, name: str, labels: dict[str, object]) -> Sample:
        found = self.series(name, **labels)
        if len(found) == 1:
            return found[0]
        if found:
            raise AssertionError(
                f"{len(found)} series match {_selector(name, labels)}; add labels to pick one:\n" + _listing(found)
            )
        family = name.removesuffix("_count").removesuffix("_sum")
        related = [s for s in self.samples() if s.name.startswith(family)]
        existing = _listing(related) if related else _names(self.samples())
        raise AssertionError(f"no series matches {_selector(name, labels)}; existing:\n{existing}")


def _selector(name: str, labels: dict[str, object]) -> str:
    inner = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _listing(samples: list[Sample], limit: int = 40) -> str:
    lines = [f"  {sample}" for sample in samples[:limit]]
    if len(samples) > limit:
        lines.append(f"  ... and {len(samples) - limit} more")
    return "\n".join(lines)


def _names(samples: list[Sample]) -> str:
    names = sorted({sample.name for sample in samples})
    return "  (metric names) " + ", ".join(names) if names else "  (no metrics at all)"


__all__ = ["HistogramSnapshot", "Sample", "SeriesQuery"]
