"""ECS task scale-in protection against a stand-in for the agent's endpoint: the request, the
agent's answers, and when the replica asks (protect, renew, unprotect, retry after a failure)."""

from __future__ import annotations

import socket
import time

import pytest
from loguru import logger

from ecs_agent import PATH, TASK_ARN, EcsAgent

from scheduler.replica.protection import ProtectionRefused, TaskProtection, put_protection


@pytest.fixture
def agent():
    agent = EcsAgent().start()
    yield agent
    agent.stop()


@pytest.fixture
def logged():
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["level"].name + " " + message.record["message"]),
                      level="INFO", format="{message}")
    yield messages
    logger.remove(sink)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_request_is_the_agents_put_with_json(agent):
    protection = put_protection(agent.uri, True, minutes=60)
    assert protection == {"ProtectionEnabled": True, "TaskArn": TASK_ARN, "ExpirationDate": "2026-11-24T20:00:00Z"}
    put_protection(agent.uri + "/", False)
    first, second = agent.requests
    assert (first.method, first.path, first.content_type) == ("PUT", "/api/task-0123" + PATH, "application/json")
    assert first.body == {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
    assert second.path == "/api/task-0123" + PATH, "a trailing slash in ECS_AGENT_URI is not doubled"
    assert second.body == {"ProtectionEnabled": False}


@pytest.mark.parametrize(("status", "answer", "reason"), [
    (200, {"failure": {"Arn": TASK_ARN, "Reason": "TASK_NOT_VALID", "Detail": "not in a service"}},
     "the ECS agent refused: TASK_NOT_VALID (not in a service)"),
    (400, {"error": {"Code": "AccessDeniedException", "Message": "no ecs:UpdateTaskProtection"}},
     "the ECS agent refused: AccessDeniedException: no ecs:UpdateTaskProtection"),
    (500, "oops", "the ECS agent answered HTTP 500 without a protection"),
])
def test_a_failure_or_error_answer_is_refused_with_its_reason(agent, status, answer, reason):
    agent.answer = (status, answer)
    with pytest.raises(ProtectionRefused) as refused:
        put_protection(agent.uri, True)
    assert str(refused.value).startswith(reason)


def test_no_agent_and_a_silent_agent_are_refusals_within_the_timeout(agent):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProtectionRefused, match="did not answer"):
        put_protection(f"http://127.0.0.1:{port}", True)
    agent.hold.set()
    started = time.monotonic()
    with pytest.raises(ProtectionRefused, match="did not answer"):
        put_protection(agent.uri, True, timeout=0.3)
    assert time.monotonic() - started < 2


def test_protected_while_leading_renewed_before_expiry_and_lifted_after(agent, logged):
    clock = Clock()
    protection = TaskProtection(agent.uri, clock=clock, minutes=60, renew_every=1800)
    protection.turn(leading=False)  # a standby at start: whatever an earlier container left is lifted
    protection.turn(leading=False)
    assert agent.states() == [False]

    protection.turn(leading=True)
    clock.now += 1799
    protection.turn(leading=True)
    assert agent.states() == [False, True], "no call while the protection is fresh"
    clock.now += 1
    protection.turn(leading=True)
    assert agent.states() == [False, True, True], "renewed every 30 minutes while leading"

    protection.turn(leading=False)
    protection.turn(leading=False)
    protection.release()
    assert agent.states() == [False, True, True, False]
    assert any("protection on while leading" in line for line in logged)
    assert any("protection off: not leading" in line for line in logged)


def test_a_failing_agent_is_one_warning_then_tried_again_later(agent, logged):
    clock = Clock()
    protection = TaskProtection(agent.uri, clock=clock, retry_after=30)
    agent.answer = (503, {"error": {"Code": "ServerException", "Message": "agent busy"}})
    protection.turn(leading=True)
    clock.now += 10
    protection.turn(leading=True)
    assert len(agent.requests) == 1, "no new call before the retry time"
    clock.now += 20
    protection.turn(leading=True)
    assert len(agent.requests) == 2
    warnings = [line for line in logged if line.startswith("WARNING")]
    assert warnings == ["WARNING could not turn on ECS task scale-in protection: the ECS agent refused: "
                        "ServerException: agent busy; trying again every 30s"]

    agent.answer = None
    clock.now += 30
    protection.turn(leading=True)
    assert protection.protected is True
    assert "INFO the ECS agent answers again" in logged


def test_release_on_stop_ignores_the_retry_timer(agent):
    clock = Clock()
    protection = TaskProtection(agent.uri, clock=clock)
    protection.turn(leading=True)
    agent.answer = (500, {})
    protection.turn(leading=False)  # fails: the next try would wait RETRY_AFTER
    agent.answer = None
    protection.release()
    assert agent.states() == [True, False, False]
    assert protection.protected is False


def test_a_failed_call_does_not_hold_up_the_next_change_of_leadership(agent):
    clock = Clock()
    protection = TaskProtection(agent.uri, clock=clock, retry_after=30)
    agent.answer = (500, {})
    protection.turn(leading=False)  # at start, standing by: the agent fails
    agent.answer = None
    clock.now += 1
    protection.turn(leading=True)  # leading a second later: asked at once, not 30 s later
    assert agent.states() == [False, True]
    assert protection.protected is True
