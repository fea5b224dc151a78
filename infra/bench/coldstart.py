"""Cold start of each measured function through its first request, against baselines.

Every run is a fresh process. For the signup function and the Stripe webhook function:

- "function": `child.py` imports the function's `app.py` as Lambda does, with its directory
  and the layer on sys.path, in the function's template environment. It serves one event: a
  `POST /v1/signups` with a new mobile number, or a `POST /v1/webhooks/stripe` delivery
  with a new event id, signed just before the process starts.
- "same work": a process that imports the same third-party modules that the function's
  process had loaded after its response, creates the same boto3 clients on one session and
  replays the same AWS operations with bench-only keys and targets (see `infra.bench.replay`).
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

import json
import os
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
from infra.local.provision import DUMMY_CREDENTIAL, FunctionSpec
from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

CHILD = Path(__file__).resolve().with_name("child.py")
PYTHON = REPOSITORY_ROOT / ".venv" / "bin" / "python"
# SDKs that no measured first request may load: the notifier and the Twilio webhook function
# use twilio, and the billing consumer and Checkout (at verification) use stripe.
MUST_NOT_LOAD = ("twilio", "stripe")
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


@dataclass(frozen=True)
class MeasuredFunction:
    """A function whose cold start the bench measures, and the status its first request needs."""

    unit: str
    logical_id: str
    expected_status: int
    session_baseline: bool


# The session-per-client baseline shows what sharing one boto3 session saves. The signup, with
# four clients, shows it best, so the webhook skips it and the bench stays shorter.
FUNCTIONS = (
    MeasuredFunction("signup", SIGNUP_FUNCTION, 202, session_baseline=True),
    MeasuredFunction("webhook", STRIPE_WEBHOOK_FUNCTION, 200, session_baseline=False),
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
    expected_status: int
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
        raise BenchFailedError(f"no first-request event is defined for unit {target.unit}")

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
            "check_loaded": list(MUST_NOT_LOAD),
        }

    def run_function(
        self, target: MeasuredFunction, python_options: tuple[str, ...] = ()
    ) -> ChildRun:
        """Serve one first request in a fresh process; raise unless it got the expected status."""
        run = self._spawn(target, self._function_spec(target), python_options)
        if run.result["status"] != target.expected_status:
            raise BenchFailedError(
                f"the {target.unit} child got HTTP {run.result['status']}, expected "
                f"{target.expected_status}; its output:\n" + run.result["stderr"][-4000:]
            )
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
            unit=target.unit, expected_status=target.expected_status, runs=self.runs, first=first
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
