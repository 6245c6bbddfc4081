"""A local SQS-compatible server (moto in server mode) on a free loopback port, for tests."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3

from redis_server import free_port, wait_for

REGION = "ap-northeast-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class SqsServer:
    """``python -m moto.server`` (the ``moto_server`` script's module) with its log in ``directory``.
    Its state lives in memory only: a restart starts with no queues."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        return boto3.client("sqs", endpoint_url=self.endpoint, region_name=REGION, **CREDENTIALS)

    def start(self) -> "SqsServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "moto.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, message=f"moto server on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            log = self.directory / "moto.log"
            raise RuntimeError(f"moto server exited with {self.process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1) as response:
                return response.status == 200
        except OSError:  # URLError included
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def __enter__(self) -> "SqsServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def create_queue(self, name: str, fifo: bool) -> str:
        """A FIFO queue's name must end in ``.fifo``; it gets no content-based deduplication, so every
        message needs an explicit MessageDeduplicationId, as the scheduler sends."""
        attributes = {"FifoQueue": "true"} if fifo else {}
        return self.client().create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def drain(self, url: str) -> list[dict]:
        """Receive and delete until a receive comes back empty, long-polling 1 s (the shortest long poll,
        so every drain takes at least a second). Each message is ``{"Body": ..., **system attributes}``
        (MessageGroupId and MessageDeduplicationId on a FIFO queue)."""
        client = self.client()
        drained: list[dict] = []
        while True:
            messages = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return drained
            drained.extend({"Body": message["Body"], **message.get("Attributes", {})} for message in messages)
            client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
