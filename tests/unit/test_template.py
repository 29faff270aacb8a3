"""template.yaml as CloudFormation sees it: least-privilege IAM, substitutions, parameters."""

from __future__ import annotations

import json
import re

import pytest

from common import settings
from common.template import SamTemplate
from tools.cfn import ASL, BATCH_ASL, TEMPLATE, transformed_template
from workflow.offline.trigger import apply_input_transformer

DEFAULT_BUCKET = "sagemaker-us-east-1-123456789012"
SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"  # the .sync integration's managed rule


@pytest.fixture(scope="module")
def cfn() -> dict:
    return transformed_template()


def role_statements(cfn: dict, role: str, bucket: str = "", **parameters: str) -> list[dict]:
    """Every statement of a role's inline policies, with intrinsics evaluated for the given parameters."""
    resolver = SamTemplate(TEMPLATE, {"DataBucketName": bucket, **parameters}, document=cfn)
    policies = cfn["Resources"][role]["Properties"].get("Policies", [])
    statements = []
    for policy in resolver.resolve(policies):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            resources = statement["Resource"]
            statements.append({
                "Action": sorted([actions] if isinstance(actions, str) else actions),
                "Resource": sorted([resources] if isinstance(resources, str) else resources),
            })
    return statements


@pytest.mark.parametrize("machine", ["ImageClassificationStateMachine", "ImageClassificationExpressStateMachine",
                                     "BatchClassificationStateMachine"])
def test_every_asl_placeholder_has_a_definition_substitution(machine):
    spec = SamTemplate(TEMPLATE).state_machine(machine)
    placeholders = set(re.findall(r"\$\{(\w+)\}", spec.definition_path.read_text()))
    assert placeholders == set(spec.substitutions)


def test_the_express_machine_runs_the_same_asl_with_the_same_substitutions():
    template = SamTemplate(TEMPLATE)
    standard = template.state_machine("ImageClassificationStateMachine")
    express = template.state_machine("ImageClassificationExpressStateMachine")
    assert (standard.type, express.type) == ("STANDARD", "EXPRESS")
    assert express.definition_path == standard.definition_path == ASL
    assert express.substitutions == standard.substitutions
    assert express.event_rules == {}  # uploads start the STANDARD machine only


def test_the_batch_asl_runs_child_executions_of_the_express_machine_and_copies_no_per_image_state(cfn):
    batch = json.loads(BATCH_ASL.read_text())
    per_image = set(json.loads(ASL.read_text())["States"])
    mapped = batch["States"]["ClassifyEachObject"]
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert mapped["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert {"MaxConcurrencyPath", "ToleratedFailurePercentagePath"} <= set(mapped)
    states = mapped["ItemProcessor"]["States"]
    assert not per_image & (set(states) | set(batch["States"]))
    tasks = [s for s in states.values() if s["Type"] == "Task"]
    assert [(t["Resource"], t["Parameters"]["StateMachineArn"]) for t in tasks] == [
        ("arn:aws:states:::states:startExecution.sync:2", "${ImageClassificationExpressStateMachineArn}")]
    substitutions = SamTemplate(TEMPLATE).state_machine("BatchClassificationStateMachine").substitutions
    assert substitutions["ImageClassificationExpressStateMachineArn"] == (
        "arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationExpressStateMachine")
    machine = cfn["Resources"]["BatchClassificationStateMachine"]["Properties"]
    assert machine["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-batch-classification"}


def test_the_batch_retries_a_child_start_refused_for_the_execution_limit_by_its_real_error_name():
    # Step Functions' own service integration names its errors "StepFunctions.<API error>"; StartExecution's is
    # ExecutionLimitExceeded (no "Exception" suffix: the AWS "start a nested workflow" example retries exactly this)
    (task,) = [s for s in json.loads(BATCH_ASL.read_text())["States"]["ClassifyEachObject"]["ItemProcessor"][
        "States"].values() if s["Type"] == "Task"]
    assert task["Retry"][0]["ErrorEquals"][0] == "StepFunctions.ExecutionLimitExceeded"


def test_the_offline_api_authorises_each_route_as_the_transformed_template_does(cfn):
    from workflow.offline.api_gateway import LocalRestApi

    (logical_id,) = SamTemplate(TEMPLATE).resources_of_type("AWS::Serverless::Api")
    offline = LocalRestApi(SamTemplate(TEMPLATE).api(logical_id)).operations
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    deployed = {(method.upper(), path): any("AWS_IAM" in s for s in operation.get("security", []))
                for path, methods in paths.items() for method, operation in methods.items()}
    served = {key: operation.iam for key, operation in offline.items()}
    assert served == deployed == {("POST", "/classifications"): True}


def test_the_api_requires_iam_authorisation_on_its_one_route(cfn):
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    body = api["Properties"]["Body"]
    assert list(body["paths"]) == ["/classifications"] and list(body["paths"]["/classifications"]) == ["post"]
    post = body["paths"]["/classifications"]["post"]
    assert post["security"] == [{"AWS_IAM": []}]
    assert body["components"]["securitySchemes"]["AWS_IAM"] == {
        "type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}
    integration = post["x-amazon-apigateway-integration"]
    assert (integration["type"], integration["passthroughBehavior"], integration["contentHandling"]) == (
        "aws", "never", "CONVERT_TO_TEXT")
    assert integration["uri"] == {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:states:action/"
                                             "StartSyncExecution"}
    assert set(integration["requestTemplates"]) == {"application/json", "image/png", "image/jpeg"}
    assert api["Properties"]["BinaryMediaTypes"] == ["image/png", "image/jpeg"]


def test_the_api_may_only_start_sync_executions_of_the_express_machine(cfn):
    assert role_statements(cfn, "ClassificationApiRole") == [{
        "Action": ["states:StartSyncExecution"],
        "Resource": ["arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationExpressStateMachine"]}]
    trust = cfn["Resources"]["ClassificationApiRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                      "Action": "sts:AssumeRole"}]


@pytest.mark.parametrize("bucket,expected", [("", DEFAULT_BUCKET), ("scones-images", "scones-images")])
def test_the_batch_starts_only_express_children_and_its_own_map_runs(cfn, bucket, expected):
    statements = role_statements(cfn, "BatchClassificationStateMachineRole", bucket)
    states = "arn:aws:states:us-east-1:123456789012"
    assert [s for s in statements if not s["Action"][0].startswith("logs:")] == [
        {"Action": ["lambda:InvokeFunction"],
         "Resource": ["arn:aws:lambda:us-east-1:123456789012:function:SummarizeBatchFunction*"]},
        {"Action": ["states:StartExecution"],
         "Resource": [f"{states}:stateMachine:ImageClassificationExpressStateMachine"]},
        {"Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": [f"{states}:execution:ImageClassificationExpressStateMachine:*",
                      f"{states}:express:ImageClassificationExpressStateMachine:*"]},
        {"Action": ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
         "Resource": [f"arn:aws:events:us-east-1:123456789012:rule/{SYNC_RULE}"]},
        {"Action": ["states:StartExecution"],
         "Resource": [f"{states}:stateMachine:scones-offline-batch-classification"]},
        {"Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": [f"{states}:execution:scones-offline-batch-classification/*"]},
        {"Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{expected}"]},
        {"Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{expected}/batch-results/*"]},
    ]


@pytest.mark.parametrize("role", ["ImageClassificationStateMachineRole", "ImageClassificationExpressStateMachineRole"])
@pytest.mark.parametrize("bus", ["default", "dispatch"])
def test_both_image_machines_may_put_events_only_on_the_chosen_bus(role, bus):
    cfn = transformed_template({"EventBusName": bus})
    statements = [s for s in role_statements(cfn, role, EventBusName=bus) if s["Action"] == ["events:PutEvents"]]
    assert statements == [{
        "Action": ["events:PutEvents"], "Resource": [f"arn:aws:events:us-east-1:123456789012:event-bus/{bus}"]}]


def test_summarize_may_read_and_write_only_batch_results(cfn):
    assert role_statements(cfn, "SummarizeBatchFunctionRole") == [
        {"Action": ["s3:GetObject", "s3:PutObject"], "Resource": [f"arn:aws:s3:::{DEFAULT_BUCKET}/batch-results/*"]},
        {"Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{DEFAULT_BUCKET}"]},
    ]


@pytest.mark.parametrize("bucket,expected", [("", DEFAULT_BUCKET), ("scones-images", "scones-images")])
def test_serialize_reads_only_the_data_bucket(cfn, bucket, expected):
    # the prefixes it may read are held in tests/unit/test_least_privilege.py
    read, listing, uploads = role_statements(cfn, "SerializeImageFunctionRole", bucket)
    assert uploads == {"Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{expected}/uploads/*"]}
    assert read["Action"] == ["s3:GetObject"] and listing["Action"] == ["s3:ListBucket"]
    assert all(resource.startswith(f"arn:aws:s3:::{expected}/") for resource in read["Resource"])
    assert listing["Resource"] == [f"arn:aws:s3:::{expected}"]


def test_classify_may_invoke_only_its_endpoint(cfn):
    assert role_statements(cfn, "ClassifyImageFunctionRole") == [{
        "Action": ["sagemaker:InvokeEndpoint"],
        "Resource": ["arn:aws:sagemaker:us-east-1:123456789012:endpoint/scones-image-classifier"],
    }]


def test_filter_has_no_permissions_beyond_logs_and_tracing(cfn):
    assert role_statements(cfn, "FilterLowConfidenceFunctionRole") == []
    assert cfn["Resources"]["FilterLowConfidenceFunctionRole"]["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    ]


@pytest.mark.parametrize("bucket,expected", [("", DEFAULT_BUCKET), ("scones-images", "scones-images")])
def test_state_machine_invokes_only_our_functions_and_writes_only_review_and_audit_records(cfn, bucket, expected):
    statements = role_statements(cfn, "ImageClassificationStateMachineRole", bucket)
    invoked = sorted(s["Resource"][0] for s in statements if s["Action"] == ["lambda:InvokeFunction"])
    assert invoked == [f"arn:aws:lambda:us-east-1:123456789012:function:{name}*" for name in
                       ("ClassifyImageFunction", "FilterLowConfidenceFunction", "SerializeImageFunction")]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    assert s3 == [{"Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{expected}/review/*"]},
                  {"Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{expected}/audit/*"]}]
    wildcard = [s for s in statements if "*" in s["Resource"]]
    assert all(all(a.startswith("logs:") for a in s["Action"]) or s["Action"] == ["cloudwatch:PutMetricData"]
               for s in wildcard)


@pytest.mark.parametrize("role", ["ImageClassificationStateMachineRole", "ImageClassificationExpressStateMachineRole"])
def test_the_per_image_machines_publish_metrics_only_to_their_namespace(cfn, role):
    """CountAuditNotRecorded's PutMetricData (which has no resource-level permissions) is held to one namespace."""
    statements = [statement for policy in cfn["Resources"][role]["Properties"]["Policies"]
                  for statement in policy["PolicyDocument"]["Statement"]
                  if "cloudwatch:PutMetricData" in statement["Action"]]
    assert [(s["Action"], s["Resource"], s["Condition"]) for s in statements] == [
        ("cloudwatch:PutMetricData", "*", {"StringEquals": {"cloudwatch:namespace":
                                                            "SconesUnlimited/ImageClassification"}})]


def test_no_statement_grants_a_wildcard_action(cfn):
    roles = [name for name, r in cfn["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    actions = [a for role in roles for s in role_statements(cfn, role) for a in s["Action"]]
    assert actions and not [a for a in actions if a == "*" or a.endswith(":*")]


def test_functions_get_their_configuration_from_template_parameters():
    template = SamTemplate(TEMPLATE, {"ConfidenceThreshold": "0.8", "EndpointName": "my-endpoint"})
    functions = template.functions()
    assert functions["FilterLowConfidenceFunction"].environment["THRESHOLD"] == "0.8"
    assert functions["ClassifyImageFunction"].environment["ENDPOINT_NAME"] == "my-endpoint"
    assert functions["ClassifyImageFunction"].environment["CLASS_NAMES"] == ",".join(settings.class_names())
    assert {f.runtime for f in functions.values()} == {"python3.12"}


def test_every_output_has_a_description(cfn):
    assert all(output.get("Description") for output in cfn["Outputs"].values())


def test_asl_uses_jsonpath_and_catches_low_confidence_by_name():
    definition = json.loads(ASL.read_text())
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
    (catch,) = definition["States"]["FilterLowConfidence"]["Catch"]
    assert catch["ErrorEquals"] == ["LowConfidenceError"]
    assert all("TimeoutSeconds" in s for s in definition["States"].values() if s["Type"] == "Task")


def resources_of(cfn: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def test_incoming_uploads_start_executions_through_an_eventbridge_rule(cfn):
    resolver = SamTemplate(TEMPLATE, {"DataBucketName": "scones-images"}, document=cfn)
    (rule,) = resolver.resolve(resources_of(cfn, "AWS::Events::Rule")).values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"] == {"bucket": {"name": ["scones-images"]}, "object": {"key": [{"prefix": "incoming/"}]}}
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationStateMachine"
    event = {"detail": {"bucket": {"name": "scones-images"}, "object": {"key": 'incoming/a "b" \\ c+d é.png'}}}
    assert json.loads(apply_input_transformer(target["InputTransformer"], event)) == {
        "image_data": "", "s3_bucket": "scones-images", "s3_key": 'incoming/a "b" \\ c+d é.png'}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 10
    role = next(name for name in resources_of(cfn, "AWS::IAM::Role") if "IncomingImage" in name)
    assert role_statements(cfn, role) == [{
        "Action": ["states:StartExecution"],
        "Resource": ["arn:aws:states:us-east-1:123456789012:stateMachine:ImageClassificationStateMachine"]}]


def test_alarms_cover_failures_low_confidence_lambda_errors_and_the_endpoint(cfn):
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm")
    assert set(alarms) == {"UnexpectedFailuresAlarm", "LowConfidenceRateAlarm", "SerializeImageErrorsAlarm",
                           "ClassifyImageErrorsAlarm", "Endpoint5xxAlarm", "EndpointLatencyAlarm", "ModelDriftAlarm",
                           "CheckDriftErrorsAlarm", "CaptureMissingAlarm", "ModelQualityAlarm", "AuditBacklogAlarm",
                           "CheckQualityErrorsAlarm", "ClassQualityAlarm", "AuditsNotRecordedAlarm"}
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
    unexpected = alarms["UnexpectedFailuresAlarm"]["Properties"]
    assert (unexpected["Namespace"], unexpected["MetricName"]) == (
        "SconesUnlimited/ImageClassification", "UnexpectedFailures")
    low = alarms["LowConfidenceRateAlarm"]["Properties"]
    assert (low["Namespace"], low["MetricName"], low["Statistic"]) == (
        "SconesUnlimited/ImageClassification", "LowConfidence", "Average")
    assert alarms["Endpoint5xxAlarm"]["Properties"]["MetricName"] == "Invocation5XXErrors"


def test_alarm_email_is_optional(cfn):
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert SamTemplate(TEMPLATE).conditions["HasAlarmEmail"] is False
    assert SamTemplate(TEMPLATE, {"AlarmEmail": "ops@example.com"}).conditions["HasAlarmEmail"] is True


def test_dashboard_body_is_valid_json_naming_every_alarm(cfn):
    resolver = SamTemplate(TEMPLATE, document=cfn)
    body = json.loads(resolver.resolve(cfn["Resources"]["MonitoringDashboard"]["Properties"]["DashboardBody"]))
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert titles == ["Executions", "Confidence (%) and share sent to review", "Lambda errors",
                      "Endpoint invocations, 5xx and p90 latency", "Drift check: features drifted, window size",
                      "Live precision of automatic decisions (labelled audits, 95% interval)", "Alarms"]
    assert len(body["widgets"][-1]["properties"]["alarms"]) == 14
    drift, quality = body["widgets"][4:6]  # live precision beside drift, on one row
    assert (drift["y"], drift["x"] + drift["width"]) == (quality["y"], quality["x"])
    assert quality["properties"]["annotations"]["horizontal"][0]["value"] == settings.target_precision()


DRIFT_NAMESPACE = "SconesUnlimited/ModelDrift"


def full_statements(cfn: dict, role: str, bucket: str = "") -> list[dict]:
    """A role's inline statements with intrinsics evaluated, conditions kept."""
    resolver = SamTemplate(TEMPLATE, {"DataBucketName": bucket}, document=cfn)
    return [statement for policy in resolver.resolve(cfn["Resources"][role]["Properties"].get("Policies", []))
            for statement in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("bucket,expected", [("", DEFAULT_BUCKET), ("scones-images", "scones-images")])
def test_drift_check_reads_only_the_capture_prefix_and_the_baseline_and_publishes_one_namespace(cfn, bucket, expected):
    statements = {s.pop("Sid"): s for s in full_statements(cfn, "CheckDriftFunctionRole", bucket)}
    capture = "data_capture/scones-image-classifier"
    assert statements == {
        "ListTheEndpointsCaptureOnly": {
            "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{expected}",
            "Condition": {"StringLike": {"s3:prefix": f"{capture}/*"}}},
        "ReadTheEndpointsCaptureAndTheBaseline": {
            "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": [f"arn:aws:s3:::{expected}/{capture}/*", f"arn:aws:s3:::{expected}/monitoring/baseline.json"]},
        "PublishDriftMetricsOnly": {
            "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": DRIFT_NAMESPACE}}},
    }


def test_drift_check_runs_on_the_schedule_parameter_and_its_namespace_is_the_alarms(cfn):
    (schedule,) = [s for s in resources_of(cfn, "AWS::Scheduler::Schedule").values()
                   if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["CheckDriftFunction", "Arn"]}]
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "DriftCheckSchedule"}
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["CheckDriftFunction", "Arn"]}
    template = SamTemplate(TEMPLATE)
    assert template.parameters["DriftCheckSchedule"] == "rate(1 hour)"
    assert SamTemplate(TEMPLATE, {"DriftCheckSchedule": "rate(15 minutes)"}).parameters["DriftCheckSchedule"] == \
        "rate(15 minutes)"
    scheduler_role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    (policy,) = cfn["Resources"][scheduler_role]["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [{"Action": "lambda:InvokeFunction", "Effect": "Allow",
                                                      "Resource": {"Fn::GetAtt": ["CheckDriftFunction", "Arn"]}}]
    environment = template.functions()["CheckDriftFunction"].environment
    assert environment == {**environment, "CAPTURE_PREFIX": "data_capture/scones-image-classifier",
                           "BASELINE_KEY": "monitoring/baseline.json", "WINDOW_HOURS": "1",
                           "METRICS_NAMESPACE": DRIFT_NAMESPACE,
                           "CLASS_NAMES": ",".join(settings.class_names())}
    alarm = cfn["Resources"]["ModelDriftAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == (
        DRIFT_NAMESPACE, "DriftedFeatures", "Maximum", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_drift_function_gets_numpy_and_the_preprocessing_from_layers():
    from common.cfn_yaml import load_template
    from common.settings import REPO_ROOT

    resources = load_template(TEMPLATE)["Resources"]
    assert resources["CheckDriftFunction"]["Properties"]["Layers"] == [{"Ref": "ImagingLayer"},
                                                                       {"Ref": "DriftCheckLayer"}]
    layer = resources["DriftCheckLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    requirements = (REPO_ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").read_text().split()
    assert len(requirements) == 1 and requirements[0].startswith("numpy==")


def _blind(expression: str, served: float | None, captured: float | None) -> int:
    """CaptureMissingAlarm's expression for one period (missing data points as None), in its one form."""
    assert expression == "IF(FILL(served, 0) > 0 AND FILL(captured, 0) == 0, 1, 0)"
    return int((served or 0) > 0 and (captured or 0) == 0)


def test_an_endpoint_serving_with_nothing_captured_for_two_hours_alarms_and_one_fresh_hour_does_not(cfn):
    alarm = resources_of(cfn, "AWS::CloudWatch::Alarm")["CaptureMissingAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    served, captured = metrics["served"]["MetricStat"], metrics["captured"]["MetricStat"]
    assert (served["Metric"]["Namespace"], served["Metric"]["MetricName"], served["Stat"]) == (
        "AWS/SageMaker", "Invocations", "Sum")
    assert (captured["Metric"]["Namespace"], captured["Metric"]["MetricName"], captured["Stat"]) == (
        "SconesUnlimited/ModelDrift", "Samples", "Maximum")  # what CheckDriftFunction publishes every hour
    dimensions = {d["Name"]: d["Value"] for d in captured["Metric"]["Dimensions"]}
    assert dimensions == {"EndpointName": {"Ref": "EndpointName"}}
    assert served["Period"] == captured["Period"] == 3600
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Threshold"]) == (2, 2, 0)
    expression = metrics["blind"]["Expression"]

    def alarms(hours: list[tuple[float | None, float | None]]) -> bool:
        points = [_blind(expression, s, c) for s, c in hours]
        return any(a and b for a, b in zip(points, points[1:]))

    # traffic starting in a fresh hour: the check reads the previous, empty hour once, then finds the capture
    assert not alarms([(None, 0), (120, 0), (130, 118), (90, 125)])
    # serverless with --no-capture, or capture writes failing: served, never captured
    assert alarms([(120, 0), (130, 0)])
    # the drift check not running at all: no Samples data point while the endpoint serves
    assert alarms([(120, None), (130, None)])
    # a quiet endpoint is not a blind one
    assert not alarms([(None, 0), (None, 0), (0, 0)])


QUALITY_NAMESPACE = "SconesUnlimited/ModelQuality"


@pytest.mark.parametrize("bucket,expected", [("", DEFAULT_BUCKET), ("scones-images", "scones-images")])
def test_quality_check_reads_only_decisions_and_labels_and_publishes_one_namespace(cfn, bucket, expected):
    statements = {s.pop("Sid"): s for s in full_statements(cfn, "CheckQualityFunctionRole", bucket)}
    assert statements == {
        "ListDecisionsAndLabelsOnly": {
            "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{expected}",
            "Condition": {"StringLike": {"s3:prefix": ["review/*", "audit/*", "labels/*"]}}},
        "ReadDecisionsAndLabelsOnly": {
            "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": [f"arn:aws:s3:::{expected}/review/*", f"arn:aws:s3:::{expected}/audit/*",
                         f"arn:aws:s3:::{expected}/labels/*"]},
        "PublishQualityMetricsOnly": {
            "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": QUALITY_NAMESPACE}}},
    }
    assert cfn["Resources"]["CheckQualityFunctionRole"]["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    ]


def test_quality_check_runs_on_its_schedule_with_the_template_values_and_its_alarms_watch_its_metrics(cfn):
    (schedule,) = [s for s in resources_of(cfn, "AWS::Scheduler::Schedule").values()
                   if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["CheckQualityFunction", "Arn"]}]
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "QualityCheckSchedule"}
    template = SamTemplate(TEMPLATE, {"TargetPrecision": "0.95", "QualityWindowHours": "24"})
    environment = template.functions()["CheckQualityFunction"].environment
    defaults = settings.template_parameter_defaults()
    assert environment == {**environment, "DATA_BUCKET": DEFAULT_BUCKET, "WINDOW_HOURS": "24",
                           "TARGET_PRECISION": "0.95", "CLASS_NAMES": defaults["ClassNames"],
                           "ENDPOINT_NAME": defaults["EndpointName"], "METRICS_NAMESPACE": QUALITY_NAMESPACE}
    resolved = SamTemplate(TEMPLATE, document=cfn).resolve(resources_of(cfn, "AWS::CloudWatch::Alarm"))
    quality, backlog = resolved["ModelQualityAlarm"]["Properties"], resolved["AuditBacklogAlarm"]["Properties"]
    assert (quality["Namespace"], quality["MetricName"], quality["ComparisonOperator"], quality["Threshold"],
            quality["TreatMissingData"]) == (QUALITY_NAMESPACE, "PrecisionUpperBound", "LessThanThreshold",
                                             defaults["TargetPrecision"], "notBreaching")
    by_class = resolved["ClassQualityAlarm"]["Properties"]
    assert {key: by_class[key] for key in quality if key not in {"AlarmDescription", "MetricName"}} == {
        key: quality[key] for key in quality if key not in {"AlarmDescription", "MetricName"}}
    assert by_class["MetricName"] == "WorstClassPrecisionUpperBound"
    assert (backlog["Namespace"], backlog["MetricName"], backlog["ComparisonOperator"], backlog["Threshold"]) == (
        QUALITY_NAMESPACE, "OldestUnlabelledAuditHours", "GreaterThanThreshold", "48")
    assert quality["Dimensions"] == backlog["Dimensions"] == [{"Name": "EndpointName",
                                                               "Value": defaults["EndpointName"]}]


def test_the_filter_chooses_audits_with_the_quality_layer_at_the_templates_audit_rate():
    from common.cfn_yaml import load_template
    from common.settings import REPO_ROOT

    resources = load_template(TEMPLATE)["Resources"]
    for function in ("FilterLowConfidenceFunction", "CheckQualityFunction"):
        assert resources[function]["Properties"]["Layers"] == [{"Ref": "ModelQualityLayer"}]
    layer = resources["ModelQualityLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    requirements = (REPO_ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").read_text()
    assert [line for line in requirements.splitlines() if not line.startswith("#")] == []  # the standard library
    functions = SamTemplate(TEMPLATE, {"AuditRate": "0.2"}).functions()
    assert functions["FilterLowConfidenceFunction"].environment["AUDIT_RATE"] == "0.2"
    assert SamTemplate(TEMPLATE).parameters["AuditRate"] == "0.02"
