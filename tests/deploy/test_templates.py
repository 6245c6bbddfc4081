"""deploy/: the CloudFormation template through cfn-lint, the ECS JSON files (and the template's own
task definition and service) through botocore's schema of the ECS API, and what the design asks of
them: secrets never in the environment, a health check, SIGTERM reaching the scheduler, Redis with
TLS and noeviction, roles that allow only what the scheduler does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.decode import decode

from scheduler.acl import Acl

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TEMPLATE = DEPLOY / "cloudformation.yaml"
TASK_DEFINITION = DEPLOY / "ecs" / "task-definition.json"
SERVICE = DEPLOY / "ecs" / "service.json"
REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]

# Fargate's CPU units and the memory (MiB) each allows (the ECS developer guide's table).
FARGATE_MEMORY = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}
URL_PATTERN = re.compile(r"rediss?://", re.IGNORECASE)


# -- helpers ------------------------------------------------------------------------------------------

def ecs_operation(name: str):
    return botocore.session.get_session().get_service_model("ecs").operation_model(name)


def schema_errors(params: dict[str, Any], operation: str) -> str:
    """botocore's own validation of ``params`` against the ECS operation's input shape ('' if none)."""
    report = ParamValidator().validate(params, ecs_operation(operation).input_shape)
    return report.generate_report() if report.has_errors() else ""


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return key == "Ref" or str(key).startswith("Fn::")


def parameter_value(template: dict[str, Any], name: str) -> Any:
    """A Ref to a parameter as its default (typed as the parameter says), else a placeholder of its type."""
    parameter = template["Parameters"].get(name)
    if parameter is None:  # a resource or a pseudo parameter: a name or an id
        return "RESOLVED-BY-CLOUDFORMATION"
    default, kind = parameter.get("Default"), parameter["Type"]
    if kind.startswith("List<") or kind == "CommaDelimitedList":
        return [item for item in str(default or "").split(",") if item] or ["RESOLVED-BY-CLOUDFORMATION"]
    if kind == "Number":
        return int(default) if default is not None else 1
    return str(default) if default is not None else "RESOLVED-BY-CLOUDFORMATION"


def as_api(template: dict[str, Any], value: Any, key: str = "") -> Any:
    """A CloudFormation ECS property as the ECS API names it: keys start lower case (the log
    driver's options keep theirs); a Ref to a parameter becomes its default, other intrinsic
    functions a placeholder string."""
    if is_intrinsic(value):
        (function, argument), = value.items()
        return parameter_value(template, argument) if function == "Ref" else "RESOLVED-BY-CLOUDFORMATION"
    if isinstance(value, dict):
        if key == "Options":
            return {str(k): as_api(template, v) for k, v in value.items()}
        return {str(k)[:1].lower() + str(k)[1:]: as_api(template, v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [as_api(template, item) for item in value]
    return value


def fargate_size_problem(cpu: Any, memory: Any) -> str | None:
    try:
        cpu_units, mebibytes = int(cpu), int(memory)
    except (TypeError, ValueError):
        return f"cpu {cpu!r} and memory {memory!r} must be numbers (strings at the task level)"
    if cpu_units not in FARGATE_MEMORY:
        return f"cpu {cpu_units} is not a Fargate size"
    if mebibytes not in FARGATE_MEMORY[cpu_units]:
        return f"memory {mebibytes} is not allowed with cpu {cpu_units} on Fargate"
    return None


def container_problems(task: dict[str, Any]) -> list[str]:
    """What the design asks of the scheduler's container, in ECS API names."""
    problems = []
    (container,) = task["containerDefinitions"]
    for entry in container.get("environment", []):
        if "REDIS_URL" in entry["name"] or URL_PATTERN.search(str(entry.get("value", ""))):
            problems.append(f"environment holds a Redis URL: {entry['name']}")
    secrets = {entry["name"]: entry["valueFrom"] for entry in container.get("secrets", [])}
    if "SCHEDULER_REDIS_URL" not in secrets:
        problems.append("SCHEDULER_REDIS_URL is not in secrets")
    elif URL_PATTERN.search(str(secrets["SCHEDULER_REDIS_URL"])):
        problems.append("SCHEDULER_REDIS_URL's valueFrom is a URL, not a secret's ARN")
    if {entry["name"]: entry["value"] for entry in container.get("environment", [])}.get("SCHEDULER_LOG_JSON") != "true":
        problems.append("SCHEDULER_LOG_JSON is not 'true'")
    if container.get("healthCheck", {}).get("command") != ["CMD", "scheduler", "health"]:
        problems.append(f"healthCheck is {container.get('healthCheck')!r}")
    if not 0 < container.get("stopTimeout", 0) <= 120:
        problems.append(f"stopTimeout {container.get('stopTimeout')!r} is not in (0, 120] (Fargate's limit)")
    if container.get("linuxParameters", {}).get("initProcessEnabled"):
        problems.append("initProcessEnabled: an init process would be PID 1 instead of the scheduler")
    if container.get("readonlyRootFilesystem") is not True:
        problems.append("the root file system is writable")
    if str(container.get("user", "0")).split(":")[0] in ("0", "root", ""):
        problems.append(f"runs as {container.get('user')!r}")
    if container.get("logConfiguration", {}).get("logDriver") != "awslogs":
        problems.append("the log driver is not awslogs")
    if "entryPoint" in container or "command" in container:
        problems.append("overrides the image's exec-form ENTRYPOINT/CMD")
    return problems


def task_problems(task: dict[str, Any]) -> list[str]:
    problems = []
    if task.get("networkMode") != "awsvpc":
        problems.append(f"networkMode {task.get('networkMode')!r}, Fargate needs awsvpc")
    if task.get("requiresCompatibilities") != ["FARGATE"]:
        problems.append(f"requiresCompatibilities {task.get('requiresCompatibilities')!r}")
    if not task.get("taskRoleArn") or not task.get("executionRoleArn"):
        problems.append("a task role and an execution role are required")
    return problems + container_problems(task)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return decoded


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == kind}


# -- cfn-lint -------------------------------------------------------------------------------------------

def test_cfn_lint_finds_nothing_in_the_template_not_even_a_warning_or_a_note():
    matches = lint_file(TEMPLATE, ManualArgs(regions=REGIONS, include_checks=["I"]))
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_cfn_lint_is_really_looking_a_misspelt_property_is_an_error():
    text = TEMPLATE.read_text().replace("TransitEncryptionEnabled: true", "TransitEncryptionEnabld: true")
    matches = lint(text, config=ManualArgs(regions=REGIONS))
    assert any(m.rule.id.startswith("E") and "TransitEncryptionEnabld" in m.message for m in matches), matches


# -- the ECS JSON files -----------------------------------------------------------------------------------

def test_the_task_definition_is_a_valid_register_task_definition_request():
    task = json.loads(TASK_DEFINITION.read_text())
    assert schema_errors(task, "RegisterTaskDefinition") == ""
    assert {"family", "containerDefinitions"} <= task.keys()
    assert all({"name", "image"} <= container.keys() for container in task["containerDefinitions"])


def test_the_task_definition_is_a_fargate_task_that_keeps_the_design():
    task = json.loads(TASK_DEFINITION.read_text())
    assert task_problems(task) == []
    assert fargate_size_problem(task["cpu"], task["memory"]) is None
    assert task["containerDefinitions"][0]["stopTimeout"] == 30


def test_the_service_is_a_valid_create_service_request_with_three_replicas_and_a_safe_rollout():
    service = json.loads(SERVICE.read_text())
    assert schema_errors(service, "CreateService") == ""
    assert service["desiredCount"] == 3
    assert service["launchType"] == "FARGATE"
    deployment = service["deploymentConfiguration"]
    assert (deployment["minimumHealthyPercent"], deployment["maximumPercent"]) == (100, 200)
    assert deployment["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert service["taskDefinition"] == json.loads(TASK_DEFINITION.read_text())["family"]


def test_the_checks_catch_what_they_look_for():
    """The validators above fail on a broken request: botocore's schema, Fargate sizes, the design."""
    task = json.loads(TASK_DEFINITION.read_text())
    task["containerDefinitions"][0]["stopTimeout"] = "30"          # a string where the API wants an int
    task["containerDefinitions"][0]["memoryReservatoin"] = 256     # an unknown member
    report = schema_errors(task, "RegisterTaskDefinition")
    assert "stopTimeout" in report and "memoryReservatoin" in report

    assert fargate_size_problem("256", "4096") == "memory 4096 is not allowed with cpu 256 on Fargate"
    assert fargate_size_problem("300", "1024") == "cpu 300 is not a Fargate size"

    task = json.loads(TASK_DEFINITION.read_text())
    container = task["containerDefinitions"][0]
    container["environment"].append({"name": "SCHEDULER_REDIS_URL", "value": "rediss://u:p@h:6379/0"})
    container["secrets"] = []
    container["linuxParameters"]["initProcessEnabled"] = True
    container["stopTimeout"] = 300
    del container["healthCheck"]
    assert len(task_problems(task)) == 5, task_problems(task)


# -- the template's own task definition and service ------------------------------------------------------

def test_the_templates_task_definition_matches_the_api_and_the_json_file(template):
    (definition,) = resources_of(template, "AWS::ECS::TaskDefinition").values()
    task = as_api(template, definition["Properties"])
    assert schema_errors(task, "RegisterTaskDefinition") == ""
    assert task_problems(task) == []
    parameters = template["Parameters"]
    assert fargate_size_problem(parameters["TaskCpu"]["Default"], parameters["TaskMemory"]["Default"]) is None

    # The same container as deploy/ecs/task-definition.json, but for what CloudFormation fills in.
    (from_json,) = json.loads(TASK_DEFINITION.read_text())["containerDefinitions"]
    (from_template,) = task["containerDefinitions"]
    for field in ("name", "essential", "user", "readonlyRootFilesystem", "stopTimeout", "linuxParameters",
                  "environment", "healthCheck"):
        assert from_template[field] == from_json[field], field
    assert [s["name"] for s in from_template["secrets"]] == [s["name"] for s in from_json["secrets"]]
    options = ("awslogs-stream-prefix", "mode", "max-buffer-size")
    assert {k: from_template["logConfiguration"]["options"][k] for k in options} == {
        k: from_json["logConfiguration"]["options"][k] for k in options}


def test_the_templates_service_matches_the_api_and_the_json_file(template):
    (service,) = resources_of(template, "AWS::ECS::Service").values()
    request = as_api(template, service["Properties"])
    request.setdefault("serviceName", "NAMED-BY-CLOUDFORMATION")
    assert schema_errors(request, "CreateService") == ""
    assert request["desiredCount"] == 3
    from_json = json.loads(SERVICE.read_text())
    assert request["deploymentConfiguration"] == from_json["deploymentConfiguration"]
    assert request["launchType"] == "FARGATE"


# -- what the template must hold --------------------------------------------------------------------------

def test_redis_has_tls_encryption_at_rest_rbac_and_noeviction(template):
    (group,) = resources_of(template, "AWS::ElastiCache::ReplicationGroup").values()
    properties = group["Properties"]
    assert properties["TransitEncryptionEnabled"] is True
    assert properties["TransitEncryptionMode"] == "required"
    assert properties["AtRestEncryptionEnabled"] is True
    assert properties["UserGroupIds"] == [{"Ref": "RedisUserGroup"}]
    assert "AuthToken" not in properties
    (parameters,) = resources_of(template, "AWS::ElastiCache::ParameterGroup").values()
    assert parameters["Properties"]["Properties"] == {"maxmemory-policy": "noeviction"}
    assert properties["CacheParameterGroupName"] == {"Ref": next(iter(resources_of(
        template, "AWS::ElastiCache::ParameterGroup")))}


def test_the_redis_users_access_string_lives_in_one_mapping(template):
    access = template["Mappings"]["RedisAccess"]["Scheduler"]["AccessString"]
    assert access == Acl().access_string(), "the template grants exactly what `scheduler acl` prints"
    users = resources_of(template, "AWS::ElastiCache::User")
    scheduler = users["RedisSchedulerUser"]["Properties"]
    assert scheduler["AccessString"] == {"Fn::FindInMap": ["RedisAccess", "Scheduler", "AccessString"]}
    assert scheduler["AuthenticationMode"]["Type"] == "password"
    assert users["RedisDefaultUser"]["Properties"]["AccessString"].startswith("off ")
    assert TEMPLATE.read_text().count("~{scheduler}:*") == 1  # nowhere else


def test_the_redis_url_is_a_secret_built_from_the_generated_password_and_read_only_by_ecs(template):
    secrets = resources_of(template, "AWS::SecretsManager::Secret")
    password = secrets["RedisPassword"]["Properties"]["GenerateSecretString"]
    assert password["GenerateStringKey"] == "password" and password["ExcludePunctuation"] is True
    url = secrets["RedisUrl"]["Properties"]["SecretString"]["Fn::Sub"]
    assert url[0].startswith("rediss://scheduler:{{resolve:secretsmanager:${RedisPassword}:SecretString:password}}@")
    assert url[1]["Host"] == {"Fn::GetAtt": ["Redis", "PrimaryEndPoint.Address"]}
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["Secrets"] == [{"Name": "SCHEDULER_REDIS_URL", "ValueFrom": {"Ref": "RedisUrl"}}]
    statements = template["Resources"]["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in str(s["Action"])]
    assert [s["Resource"] for s in reads] == [{"Ref": "RedisUrl"}]


def test_the_task_role_sends_only_to_the_given_queues_and_touches_only_its_own_tasks(template):
    policies = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    statements = []
    for policy in policies:
        if "Fn::If" in policy:
            condition, policy, otherwise = policy["Fn::If"]
            assert condition == "SendsToSqs" and otherwise == {"Ref": "AWS::NoValue"}
        statements += policy["PolicyDocument"]["Statement"]
    actions = {action for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"sqs:SendMessage", "ecs:GetTaskProtection", "ecs:UpdateTaskProtection"}
    for statement in statements:
        assert statement["Effect"] == "Allow" and statement["Resource"] != "*", statement
    (sqs,) = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    assert sqs["Resource"] == {"Ref": "SqsQueueArns"}


def test_redis_is_reachable_from_the_tasks_only(template):
    group = template["Resources"]["RedisSecurityGroup"]["Properties"]
    assert group["SecurityGroupIngress"] == [{
        "Description": "Redis (TLS) from the scheduler replicas", "IpProtocol": "tcp", "FromPort": 6379,
        "ToPort": 6379, "SourceSecurityGroupId": {"Ref": "TaskSecurityGroup"}}]
    assert "SecurityGroupIngress" not in template["Resources"]["TaskSecurityGroup"]["Properties"]
    ingress_rules = resources_of(template, "AWS::EC2::SecurityGroupIngress")
    assert ingress_rules == {}


def test_the_logs_are_kept_for_a_bounded_time(template):
    (group,) = resources_of(template, "AWS::Logs::LogGroup").values()
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
