"""A CloudWatch metric alarm of template.yaml evaluated offline, on what a function published to moto's CloudWatch
(moto stores metrics and alarms but never evaluates an alarm).

A single-metric alarm as CloudWatch evaluates it: the alarm's Statistic of its metric (Namespace, MetricName,
Dimensions) over each of the last EvaluationPeriods periods of Period seconds; ALARM when every one of those
datapoints breaches Threshold by ComparisonOperator (DatapointsToAlarm is EvaluationPeriods unless set); no
datapoint at all is what TreatMissingData says (notBreaching: OK, breaching: ALARM, missing/ignore:
INSUFFICIENT_DATA). Metric-math alarms are not evaluated here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from common.template import SamTemplate

ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt, "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le,
}
MISSING = {"notBreaching": OK, "breaching": ALARM, "missing": INSUFFICIENT_DATA, "ignore": INSUFFICIENT_DATA}


def alarm_properties(template: SamTemplate, logical_id: str) -> dict[str, Any]:
    """The alarm's Properties with the template's parameters (and overrides) resolved."""
    properties: dict[str, Any] = template.resolve(template.document["Resources"][logical_id]["Properties"])
    return properties


def alarm_state(properties: Mapping[str, Any], cloudwatch: Any, now: datetime) -> tuple[str, list[float]]:
    """(state, the datapoints judged, oldest first) of a single-metric alarm at `now`."""
    period = int(properties["Period"])
    periods = int(properties["EvaluationPeriods"])
    statistic = str(properties["Statistic"])
    points = cloudwatch.get_metric_statistics(
        Namespace=properties["Namespace"], MetricName=properties["MetricName"],
        Dimensions=properties.get("Dimensions", []), StartTime=now - timedelta(seconds=period * periods),
        EndTime=now + timedelta(seconds=1), Period=period, Statistics=[statistic])["Datapoints"]
    values = [float(point[statistic]) for point in sorted(points, key=lambda point: point["Timestamp"])][-periods:]
    if not values:
        return MISSING[str(properties.get("TreatMissingData", "missing"))], []
    breaches = COMPARISONS[str(properties["ComparisonOperator"])]
    needed = int(properties.get("DatapointsToAlarm", periods))
    threshold = float(properties["Threshold"])
    return (ALARM if sum(breaches(value, threshold) for value in values) >= needed else OK), values
