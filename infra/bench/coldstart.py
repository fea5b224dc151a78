"""Cold start of each measured function through its first request, against baselines.

Every run is a fresh process. For the signup function, the Stripe webhook function and the
notifier:

- "function": `child.py` imports the function's `app.py` as Lambda does, with its directory
  and the layer on sys.path, in the function's template environment. It serves one event: a
  `POST /v1/signups` with a new mobile number, a `POST /v1/webhooks/stripe` delivery with a
  new event id, signed just before the process starts, or an SQS batch with the code SMS job
  of a new signup, which the bench makes in-process just before.
- "same work": a process that imports the same third-party modules that the function's
  process had loaded after its response, creates the same boto3 clients on one session and
  replays the same AWS operations with bench-only keys and targets (see `infra.bench.replay`).
  For the notifier it also sends one SMS of the same length through the twilio SDK to the
  Twilio emulator, because the function's request does.
- "same work, a session per client" (signup only): the same, with a new boto3 session for
  each client as `idsentry.adapters.aws.client` created them, to show what sessions cost.
- "boto3 only": a process that imports boto3 and creates one client, with no request.

Bytecode is cached under a fresh PYTHONPYCACHEPREFIX for each bench run. The project's
Makefile sets PYTHONDONTWRITEBYTECODE, so without that cache every run would compile every
imported module from source. The first run of each kind fills the cache and is reported
separately. The timed runs of one function are interleaved (one of each kind in turn), so
that drift of the machine's load affects every kind alike. The queue pollers of the local
service are paused meanwhile, so that the consumers' work on earlier requests does not
compete for CPU. Before they restart, the bench purges the code SMS jobs of the measured
signups, and receives, checks and deletes the webhook's messages, so that the billing
consumer never looks up their made-up event ids in the local Stripe server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.bench.child import TIMER_STARTED
from infra.bench.replay import ReplayTargets, build_plan, prepare_targets, recorded_tables
from infra.bench.request_counts import (
    SIGNUP_FUNCTION,
    STRIPE_WEBHOOK_FUNCTION,
    BenchFailedError,
    check_one_message_per_delivery,
    drain_stripe_events,
    operation_name,
    stripe_events_queue_url,
)
from infra.bench.workload import IdentityFactory, new_stripe_event_id, signup_event, stripe_delivery
from infra.local.provision import DUMMY_CREDENTIAL, FunctionSpec, check_loopback
from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

CHILD = Path(__file__).resolve().with_name("child.py")
PYTHON = REPOSITORY_ROOT / ".venv" / "bin" / "python"
NOTIFIER_FUNCTION = "NotifierFunction"
# SDKs that a function's first request must not load, because another function needs them:
# the notifier and the Twilio webhook function use twilio, and the billing consumer and
# Checkout (at verification) use stripe.
NOT_FOR_HTTP_FUNCTIONS = ("twilio", "stripe")
NOT_FOR_NOTIFIER = ("stripe",)
CHILD_TIMEOUT_S = 120
SETTLE_DEADLINE_S = 30.0
FINAL_SMS_STATUSES = ("delivered", "undelivered", "failed")
# The same retry and timeout settings as idsentry.adapters.aws.
CLIENT_CONFIG = {
    "retries": {"mode": "standard", "max_attempts": 4},
    "connect_timeout": 3,
    "read_timeout": 10,
}
# Summary fields that name the replay's own targets, so they differ from the function's.
TARGET_FIELDS = ("queue_url", "buses")
SQS_SAMPLE_EVENT = REPOSITORY_ROOT / "events" / "sqs" / "notification_otp.json"


@dataclass(frozen=True)
class MeasuredFunction:
    """A function whose cold start the bench measures, and what its first request must return.

    `expected_status` is the HTTP status of an HTTP API function, or None for an SQS consumer,
    whose response must report no failed record. `must_not_load` names the SDKs whose modules
    the process must not have loaded after its request.
    """

    unit: str
    logical_id: str
    expected_status: int | None
    session_baseline: bool
    must_not_load: tuple[str, ...]


# The session-per-client baseline shows what sharing one boto3 session saves. The signup, with
# four clients, shows it best, so the others skip it and the bench stays shorter.
FUNCTIONS = (
    MeasuredFunction(
        "signup", SIGNUP_FUNCTION, 202, session_baseline=True, must_not_load=NOT_FOR_HTTP_FUNCTIONS
    ),
    MeasuredFunction(
        "webhook",
        STRIPE_WEBHOOK_FUNCTION,
        200,
        session_baseline=False,
        must_not_load=NOT_FOR_HTTP_FUNCTIONS,
    ),
    MeasuredFunction(
        "notifier",
        NOTIFIER_FUNCTION,
        None,
        session_baseline=False,
        must_not_load=NOT_FOR_NOTIFIER,
    ),
)


@dataclass
class ChildRun:
    """One child process: its parsed result and the wall time of the whole process."""

    result: dict[str, Any]
    wall_s: float

    @property
    def elapsed_s(self) -> float:
        return float(self.result["elapsed_s"])


@dataclass
class ColdStartResult:
    """Every run of one function's cold-start bench, keyed by process kind.

    The kinds are "function", "baseline", "sessions" (with session_baseline only) and "boto3".
    """

    unit: str
    expected_status: int | None
    must_not_load: tuple[str, ...]
    runs: int
    first: dict[str, ChildRun]
    timed: dict[str, list[ChildRun]] = field(default_factory=lambda: defaultdict(list))
    import_costs: list[tuple[str, int]] = field(default_factory=list)
    module_costs: list[tuple[str, int]] = field(default_factory=list)
    import_total_us: int = 0

    def median(self, kind: str, phase: str | None = None) -> float:
        """Return the median elapsed time of kind in seconds, or of one of its phases."""
        if phase is None:
            return statistics.median(run.elapsed_s for run in self.timed[kind])
        return statistics.median(float(run.result["phases"][phase]) for run in self.timed[kind])

    def median_wall(self, kind: str) -> float:
        return statistics.median(run.wall_s for run in self.timed[kind])


def call_shapes(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return each call's operation and summary without the fields that name replay targets."""
    shapes = []
    for call in calls:
        summary = {key: value for key, value in call["summary"].items() if key not in TARGET_FIELDS}
        shapes.append((operation_name(call), json.dumps(summary, sort_keys=True)))
    return shapes


class ColdStartBench:
    """Spawn the child processes against a started LocalService and collect their results."""

    def __init__(
        self,
        service: LocalService,
        workdir: Path,
        runs: int,
        functions: tuple[MeasuredFunction, ...] = FUNCTIONS,
    ) -> None:
        if service.stack is None:
            raise BenchFailedError("the local service is not started")
        self.service = service
        self.runtime = service.stack.runtime
        self.workdir = workdir
        self.runs = runs
        self.functions = functions
        self.identities = IdentityFactory()
        self.stripe_queue_url = stripe_events_queue_url(service)
        self.stripe_event_ids: list[str] = []
        # The number that the latest code job sends to, and the text of the first code SMS.
        self.code_mobile: str | None = None
        self.code_sms_body: str | None = None
        self._clients: dict[str, Any] = {}
        self._environments = {
            target.logical_id: self._child_environment(self.runtime.functions[target.logical_id])
            for target in functions
        }

    def client(self, service_name: str) -> Any:
        """Return a cached client of the bench process for service_name."""
        if service_name not in self._clients:
            self._clients[service_name] = self.runtime.client(service_name)
        return self._clients[service_name]

    def _child_environment(self, function: FunctionSpec) -> dict[str, str]:
        """Return the function's environment from the template, pointed at moto.

        Nothing is inherited from the bench process, so no credential, proxy or profile
        of the caller's shell reaches the children.
        """
        assert self.service.stack is not None
        environment = dict(function.environment)
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.service.stack.endpoint_url,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
                "AWS_DEFAULT_REGION": self.service.stack.provisioned.region,
                "AWS_REGION": self.service.stack.provisioned.region,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "LANG": "C.UTF-8",
                "PYTHONPYCACHEPREFIX": str(self.workdir / "pycache"),
            }
        )
        # The local service adds the emulators' base URLs (TWILIO_BASE_URL and the like) to the
        # runtime's environment, not to the template. A function without them would call the
        # real provider.
        for name, value in self.runtime.environment.items():
            if name.endswith("_BASE_URL") and name not in environment:
                environment[name] = check_loopback(value)
        return environment

    def _spawn(
        self,
        target: MeasuredFunction,
        spec: dict[str, Any],
        python_options: tuple[str, ...] = (),
    ) -> ChildRun:
        """Run child.py with spec and return its result; raise BenchFailedError on failure."""
        name = uuid.uuid4().hex
        spec_path = self.workdir / f"{name}.spec.json"
        result_path = self.workdir / f"{name}.result.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")

        command = [str(PYTHON), "-P", *python_options, str(CHILD), str(spec_path), str(result_path)]
        started = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 (fixed interpreter and script of this repository)
            command,
            env=self._environments[target.logical_id],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        wall_s = time.perf_counter() - started
        if completed.returncode != 0 or not result_path.exists():
            raise BenchFailedError(
                f"the {spec['mode']} child exited with {completed.returncode}:\n"
                + completed.stderr[-4000:]
            )
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        result["stderr"] = completed.stderr
        return ChildRun(result, wall_s)

    def _event(self, target: MeasuredFunction) -> dict[str, Any]:
        """Return a new first-request event for target; a webhook delivery is signed now."""
        if target.unit == "signup":
            from idsentry.consents import CURRENT_VERSIONS

            consents = {str(kind): version for kind, version in CURRENT_VERSIONS.items()}
            return signup_event(self.identities.new(), consents)
        if target.unit == "webhook":
            event_id = new_stripe_event_id()
            self.stripe_event_ids.append(event_id)
            return stripe_delivery(event_id, self.service.stripe_webhook_secret)
        if target.unit == "notifier":
            return self._code_job_event(target)
        raise BenchFailedError(f"no first-request event is defined for unit {target.unit}")

    def _code_job_event(self, target: MeasuredFunction) -> dict[str, Any]:
        """Make a new signup in this process and return an SQS batch with its code SMS job.

        The signup also puts that job on the notification queue, where it stays, because the
        pollers are paused, until the queue is purged before they restart.
        """
        from idsentry.consents import CURRENT_VERSIONS
        from idsentry.models.jobs import OtpJob
        from idsentry.services.signup import signup_pk
        from idsentry.wiring import main_table

        identity = self.identities.new()
        consents = {str(kind): version for kind, version in CURRENT_VERSIONS.items()}
        response = self.runtime.invoke(SIGNUP_FUNCTION, signup_event(identity, consents))
        if response.get("statusCode") != 202:
            raise BenchFailedError(
                f"the signup for a code job returned {response.get('statusCode')}: "
                f"{response.get('body')}"
            )
        signup_id = str(json.loads(response["body"])["signup_id"])
        signup = main_table().get(signup_pk(signup_id), "SIGNUP")
        if signup is None or not signup.get("code_id"):
            raise BenchFailedError("the signup for a code job stored no code id")

        job = OtpJob(
            job_id=f"job_bench_{uuid.uuid4().hex}", signup_id=signup_id, code_id=signup["code_id"]
        )
        self.code_mobile = identity.mobile
        return sqs_event(job.model_dump_json(), self._queue_arn(target))

    def _queue_arn(self, target: MeasuredFunction) -> str:
        for mapping in self.runtime.mappings:
            if mapping.function_logical_id == target.logical_id:
                return mapping.event_source_arn
        raise BenchFailedError(f"the template maps no queue to {target.logical_id}")

    def _check_code_sms(self) -> None:
        """Raise unless the Twilio emulator got exactly one SMS to the latest code job's number."""
        assert self.service.twilio is not None
        messages = [
            message
            for message in self.service.twilio.messages()
            if message["to"] == self.code_mobile
        ]
        if len(messages) != 1:
            raise BenchFailedError(
                f"the notifier sent {len(messages)} SMS for one code job, expected exactly 1"
            )
        if self.code_sms_body is None:
            self.code_sms_body = str(messages[0]["body"])

    def _baseline_sms(self) -> dict[str, Any]:
        """Return the SMS that the notifier's same-work process sends, to a number of its own.

        The body has the length and alphabet of the first code SMS, with every digit set to 0.
        """
        assert self.service.twilio is not None
        if self.code_sms_body is None:
            raise BenchFailedError("no code SMS was sent before the same-work run")
        return {
            "base_url": self.service.twilio.base_url,
            "account_sid": self.service.twilio_account_sid,
            "auth_token": self.service.twilio_auth_token,
            "messaging_service_sid": self.service.twilio_messaging_service_sid,
            "to": self.identities.new().mobile,
            "body": re.sub(r"[0-9]", "0", self.code_sms_body),
        }

    def _function_spec(self, target: MeasuredFunction) -> dict[str, Any]:
        function = self.runtime.functions[target.logical_id]
        module, _, function_name = function.handler.rpartition(".")
        if function.code_dir is None:
            raise BenchFailedError(f"{target.logical_id} has no local CodeUri")
        layers = [str(layer / "python") for layer in function.layer_dirs]
        return {
            "mode": "function",
            "sys_path": [str(function.code_dir), *layers],
            "handler_module": module,
            "handler_function": function_name,
            "event": self._event(target),
            "function": {
                "name": function.name,
                "arn": function.arn,
                "memory_mb": function.memory_mb,
                "timeout_s": function.timeout_s,
                "request_id": str(uuid.uuid4()),
            },
            "check_loaded": list(target.must_not_load),
        }

    def run_function(
        self, target: MeasuredFunction, python_options: tuple[str, ...] = ()
    ) -> ChildRun:
        """Serve one first request in a fresh process, and raise unless it got the expected response."""
        run = self._spawn(target, self._function_spec(target), python_options)
        if target.expected_status is None:
            failures = run.result["batch_item_failures"]
            if failures != 0:
                raise BenchFailedError(
                    f"the {target.unit} child reported {failures} failed records, expected "
                    "none; its output:\n" + run.result["stderr"][-4000:]
                )
        elif run.result["status"] != target.expected_status:
            raise BenchFailedError(
                f"the {target.unit} child got HTTP {run.result['status']}, expected "
                f"{target.expected_status}; its output:\n" + run.result["stderr"][-4000:]
            )
        if target.unit == "notifier":
            self._check_code_sms()
        return run

    def run_baseline(
        self,
        target: MeasuredFunction,
        recorded: dict[str, Any],
        replay_targets: ReplayTargets,
        session_per_client: bool = False,
    ) -> ChildRun:
        """Import the recorded modules, create the recorded clients and replay the calls."""
        spec = {
            "mode": "baseline",
            "sys_path": [],
            "modules": recorded["modules"],
            "clients": list(dict.fromkeys(recorded["clients"])),
            "session_per_client": session_per_client,
            "client_config": CLIENT_CONFIG,
            "calls": build_plan(recorded["calls"], replay_targets, self.client),
        }
        if target.unit == "notifier":
            spec["sms"] = self._baseline_sms()
        return self._spawn(target, spec)

    def run_boto3_only(self, target: MeasuredFunction, service_name: str) -> ChildRun:
        """Import boto3 and create one client in a fresh process."""
        return self._spawn(target, {"mode": "boto3", "service": service_name})

    def _check_calls(
        self,
        target: MeasuredFunction,
        kind: str,
        run: ChildRun,
        expected: list[tuple[str, str]],
    ) -> None:
        calls = run.result["calls"]
        if call_shapes(calls) != expected:
            raise BenchFailedError(
                f"the {kind} run made {[operation_name(c) for c in calls]}, but the first "
                f"{target.unit} run made {[name for name, _ in expected]}; the baseline would "
                "not do the same work"
            )
        failed = [operation_name(call) for call in calls if call["status"] != 200]
        if failed:
            raise BenchFailedError(f"the {kind} run got errors from {failed}")

    def _settled(self) -> bool:
        """Return whether no queue, SMS or status callback has work left."""
        assert self.service.twilio is not None
        sqs = self.client("sqs")
        for mapping in self.runtime.mappings:
            attributes = sqs.get_queue_attributes(
                QueueUrl=mapping.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if any(int(count) for count in attributes.values()):
                return False
        for message in self.service.twilio.messages():
            if message["status"] not in FINAL_SMS_STATUSES and not message["held_for_review"]:
                return False
        return self.service.twilio.wait_for_callbacks(0.1)

    @contextmanager
    def _pollers_paused(self) -> Iterator[None]:
        """Wait until earlier work has settled, stop the queue pollers, and restart them after.

        The code SMS jobs of the measured signups are purged before the restart, because no
        one reads those codes. The Stripe events queue is purged too, which matters only
        after a failed run: a finished run has already received and deleted its messages.
        """
        give_up = time.monotonic() + SETTLE_DEADLINE_S
        while not self._settled():
            if time.monotonic() > give_up:
                raise BenchFailedError(
                    f"queues, SMS or status callbacks still had work after {SETTLE_DEADLINE_S} s"
                )
            time.sleep(0.1)
        self.runtime.stop()
        try:
            yield
        finally:
            signup = self.runtime.functions[SIGNUP_FUNCTION]
            sqs = self.client("sqs")
            sqs.purge_queue(QueueUrl=signup.environment["NOTIFICATION_QUEUE_URL"])
            sqs.purge_queue(QueueUrl=self.stripe_queue_url)
            self.runtime.start()

    def run(self) -> list[ColdStartResult]:
        """Measure each function, then check that each delivery enqueued one message."""
        with self._pollers_paused():
            results = [self._measure(target) for target in self.functions]
            received = drain_stripe_events(self.client("sqs"), self.stripe_queue_url)
            check_one_message_per_delivery(self.stripe_event_ids, received)
        return results

    def _measure(self, target: MeasuredFunction) -> ColdStartResult:
        """Run the first (bytecode-compiling) runs, then the interleaved timed runs."""
        first_run = self.run_function(target)
        recorded = first_run.result
        expected = call_shapes(recorded["calls"])
        self._check_calls(target, target.unit, first_run, expected)
        if not recorded["clients"]:
            raise BenchFailedError(f"the {target.unit} child created no AWS client")

        replay_targets = prepare_targets(
            self.client("dynamodb"),
            self.client("sqs"),
            self.client("events"),
            recorded_tables(recorded["calls"]),
        )
        first_client = recorded["clients"][0]
        first = {
            "function": first_run,
            "baseline": self.run_baseline(target, recorded, replay_targets),
        }
        if target.session_baseline:
            first["sessions"] = self.run_baseline(
                target, recorded, replay_targets, session_per_client=True
            )
        first["boto3"] = self.run_boto3_only(target, first_client)
        result = ColdStartResult(
            unit=target.unit,
            expected_status=target.expected_status,
            must_not_load=target.must_not_load,
            runs=self.runs,
            first=first,
        )
        self._check_calls(target, "same-work", first["baseline"], expected)
        if target.session_baseline:
            self._check_calls(target, "same-work", first["sessions"], expected)

        for _ in range(self.runs):
            run = self.run_function(target)
            self._check_calls(target, target.unit, run, expected)
            result.timed["function"].append(run)
            baseline = self.run_baseline(target, recorded, replay_targets)
            self._check_calls(target, "same-work", baseline, expected)
            result.timed["baseline"].append(baseline)
            if target.session_baseline:
                sessions = self.run_baseline(
                    target, recorded, replay_targets, session_per_client=True
                )
                self._check_calls(target, "same-work", sessions, expected)
                result.timed["sessions"].append(sessions)
            boto3_only = self.run_boto3_only(target, first_client)
            self._check_calls(target, "boto3-only", boto3_only, [])
            result.timed["boto3"].append(boto3_only)

        profiled = self.run_function(target, ("-X", "importtime"))
        costs = import_costs(profiled.result["stderr"])
        result.import_costs, result.module_costs, result.import_total_us = costs
        return result


def sqs_event(body: str, source_arn: str) -> dict[str, Any]:
    """Return an SQS event with one record carrying body, in the shape of the sample event."""
    event: dict[str, Any] = json.loads(SQS_SAMPLE_EVENT.read_text(encoding="utf-8"))
    record = event["Records"][0]
    now_ms = str(int(time.time() * 1000))
    record.update(
        {
            "messageId": str(uuid.uuid4()),
            "body": body,
            "md5OfBody": hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest(),
            "eventSourceARN": source_arn,
        }
    )
    record["attributes"].update(
        {"SentTimestamp": now_ms, "ApproximateFirstReceiveTimestamp": now_ms}
    )
    return {"Records": [record]}


def import_costs(stderr: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """Return `-X importtime` self times in µs: per top-level package, per module and in total.

    Only imports after the child's timer started count. Both lists are sorted largest
    first, and standard-library modules are summed as one package, "(standard library)".
    """
    per_package: dict[str, int] = defaultdict(int)
    per_module: dict[str, int] = {}
    total = 0
    stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    marker = TIMER_STARTED.decode().strip()
    lines = stderr.splitlines()
    if marker not in lines:
        raise BenchFailedError("the importtime child never started its timer")
    for line in lines[lines.index(marker) + 1 :]:
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        self_us = int(fields[0])
        module = fields[2].strip()
        top = module.partition(".")[0]
        package = "(standard library)" if top in stdlib else top
        per_package[package] += self_us
        per_module[module] = per_module.get(module, 0) + self_us
        total += self_us

    def largest_first(entry: tuple[str, int]) -> int:
        return -entry[1]

    return (
        sorted(per_package.items(), key=largest_first),
        sorted(per_module.items(), key=largest_first),
        total,
    )
