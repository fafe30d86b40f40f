"""Panel factories: every panel the dashboards build has a description, a unit, thresholds and a datasource
(a heatmap: the units of its axis and cells, and a colour scheme instead of thresholds).

The factories take those as required arguments, so a panel without them cannot be written; the tests in
tests/grafana check the generated JSON for the same things (and more) independently of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import heatmap, stat, timeseries
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from .config import DASHBOARD_TITLES, DASHBOARD_UIDS, RUNBOOKS

# Every panel and query goes through the datasource variable, whose default is the provisioned Prometheus.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


@dataclass(frozen=True)
class Query:
    """One PromQL target; ``exemplars`` asks Grafana for the trace exemplars of the series it reads; ``instant``
    asks for one value at the end of the time range (a stat over ``$__range`` needs no series of them)."""

    expr: str
    legend: str = "__auto"
    exemplars: bool = False
    instant: bool = False


Steps = Sequence[tuple[float | None, str]]


def informational() -> Steps:
    """Thresholds for a panel with no alert behind it: one neutral colour, said so explicitly."""
    return [(None, BLUE)]


def above(warning: float | None, critical: float | None) -> Steps:
    """Green below, orange from ``warning``, red from ``critical`` (either may be absent)."""
    steps: list[tuple[float | None, str]] = [(None, GREEN)]
    if warning is not None:
        steps.append((warning, ORANGE))
    if critical is not None:
        steps.append((critical, RED))
    return steps


def below(critical: float, warning: float | None = None) -> Steps:
    """Red below ``critical`` (a ratio that must stay high, e.g. availability), green from it."""
    steps: list[tuple[float | None, str]] = [(None, RED)]
    if warning is not None:
        steps.append((critical, ORANGE))
        steps.append((warning, GREEN))
    else:
        steps.append((critical, GREEN))
    return steps


def _thresholds(steps: Steps) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def runbook(name: str) -> dashboard_builders.DashboardLink:
    """A link to one of the spec's runbooks (the same URLs the alerts carry in ``runbook_url``)."""
    return (
        dashboard_builders.DashboardLink(f"Runbook: {name}")
        .type(DashboardLinkType.LINK)
        .url(RUNBOOKS[name])
        .target_blank(True)
    )


def dashboard_link(key: str) -> dashboard_builders.DashboardLink:
    """A link to another otelkit dashboard that keeps the time range and the variables."""
    return (
        dashboard_builders.DashboardLink(DASHBOARD_TITLES[key].removeprefix("otelkit / "))
        .type(DashboardLinkType.LINK)
        .url(f"/d/{DASHBOARD_UIDS[key]}")
        .icon("dashboard")
        .include_vars(True)
        .keep_time(True)
    )


def _targets(queries: Sequence[Query], fmt: PromQueryFormat | None = None) -> list[Dataquery]:
    targets = []
    for ref, query in zip("ABCDEFGH", queries, strict=False):
        target = Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref).datasource(DATASOURCE)
        target = target.instant() if query.instant else target.range()
        if query.exemplars:
            target = target.exemplar(True)
        if fmt is not None:
            target = target.format(fmt)
        targets.append(target)
    if len(targets) != len(queries):
        raise ValueError(f"at most 8 queries per panel, got {len(queries)}")
    return targets


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    thresholds: Steps,
    *,
    width: int = 12,
    height: int = 8,
    runbooks: Sequence[str] = (),
    stacked: bool = False,
    min_value: float | None = 0,
    max_value: float | None = None,
) -> timeseries.Panel:
    """A time series; thresholds beyond the base colour are drawn as dashed lines (the alert's level)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(_thresholds(thresholds))
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED if len(thresholds) > 1 else common.GraphThresholdsStyleMode.OFF
            )
        )
        .fill_opacity(25 if stacked else 8)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
        )
        .targets(_targets(queries))
        .links([runbook(name) for name in runbooks])
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    thresholds: Steps,
    *,
    width: int = 6,
    height: int = 5,
    runbooks: Sequence[str] = (),
    decimals: int | None = None,
    mappings: dict[str, tuple[str, str]] | None = None,
) -> stat.Panel:
    """A single number coloured by its thresholds, with the last value of each series."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(_thresholds(thresholds))
        .color_mode(common.BigValueColorMode.BACKGROUND if len(thresholds) > 1 else common.BigValueColorMode.VALUE)
        # A sparkline needs a range query; instant ones give the number alone.
        .graph_mode(common.BigValueGraphMode.NONE if all(q.instant for q in queries) else common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .targets(_targets(queries))
        .links([runbook(name) for name in runbooks])
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        options = {value: ValueMappingResult(text=text, color=color) for value, (text, color) in mappings.items()}
        panel = panel.mappings([ValueMap(options=options)])
    return panel


def heatmap_panel(
    title: str,
    description: str,
    bucket_unit: str,
    cell_unit: str,
    query: Query,
    *,
    width: int = 12,
    height: int = 8,
    runbooks: Sequence[str] = (),
) -> heatmap.Panel:
    """A heatmap of a Prometheus histogram, one row per ``le`` bucket (in ``bucket_unit``), each cell the query's
    value for that bucket (in ``cell_unit``).

    Grafana's heatmap ignores the standard field options but Links (fieldConfig unit, thresholds): its units are
    the y axis's and the cells' options, and its colours the colour scheme, so no unit or thresholds go in
    fieldConfig (tests/grafana/lint.py rejects them there).
    """
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .calculate(False)
        .scale_distribution(common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LINEAR))
        .y_axis(heatmap.YAxisConfig().unit(bucket_unit))
        .cell_values(heatmap.CellValues().unit(cell_unit))
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .color(heatmap.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME).scheme("Oranges").steps(64))
        .show_color_scale(True)
        .exemplars_color("rgba(255,0,255,0.7)")
        .targets(_targets([query], PromQueryFormat.HEATMAP))
        .links([runbook(name) for name in runbooks])
    )


def row(title: str) -> dashboard_builders.Row:
    return dashboard_builders.Row(title)
