"""Cold start of every function through its first request, against baselines.

Every run is a fresh process. For each function in template.yaml (`infra.bench.first_requests`
says how each one's first request is made and checked):

- "function": `child.py` imports the function's `app.py` as Lambda does, with its directory
  and the layer on sys.path, in the function's template environment, and serves one event.
  Where the request needs state (a subscriber, a sign-in, a queued job), the bench makes it
  through the product's own paths before the runs, and each run gets a new event of its own,
  so that every run does the same work.
- "same work": a process that imports the same third-party modules that the function's
  process had loaded after its response, creates the same boto3 clients on one session and
  replays the same AWS operations with bench-only keys and targets (see `infra.bench.replay`).
  It then sends the function's requests to the Stripe, Twilio and HIBP emulators again, with
  the same method, URL, headers and body. The notifier's same-work process sends its own SMS
  of the same length through the twilio SDK instead.
- "same work, a session per client" (signup only): the same, with a new boto3 session for
  each client as `idsentry.adapters.aws.client` created them, to show what sessions cost.
- "boto3 only": a process that imports boto3 and creates one client, with no request.

Bytecode is cached under a fresh PYTHONPYCACHEPREFIX for each bench run. The project's
Makefile sets PYTHONDONTWRITEBYTECODE, so without that cache every run would compile every
imported module from source. The first run of each kind fills the cache and is reported
separately. The timed runs of one function are interleaved (one of each kind in turn), so
that drift of the machine's load affects every kind alike. The queue pollers of the local
service are paused during one function's runs, so that the consumers' work on earlier
requests does not compete for CPU. Before they restart, the bench empties every mapped queue,
so the jobs and events that the measured runs queued are never processed.
"""

from __future__ import annotations

import gc
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
from infra.bench.first_requests import ColdStartContext, FirstRequest, first_requests
from infra.bench.first_requests.base import sqs_event
from infra.bench.replay import (
    ReplayError,
    ReplayTargets,
    build_plan,
    prepare_targets,
    recorded_tables,
)
from infra.bench.request_counts import BenchFailedError, operation_name
from infra.bench.seeding import Seeder
from infra.local.provision import DUMMY_CREDENTIAL, FunctionSpec, check_loopback
from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

CHILD = Path(__file__).resolve().with_name("child.py")
PYTHON = REPOSITORY_ROOT / ".venv" / "bin" / "python"
CHILD_TIMEOUT_S = 120
# Seeding paid subscribers leaves Stripe events that a consumer may defer for a while.
SETTLE_DEADLINE_S = 90.0
FINAL_SMS_STATUSES = ("delivered", "undelivered", "failed")
# The same retry and timeout settings as idsentry.adapters.aws.
CLIENT_CONFIG = {
    "retries": {"mode": "standard", "max_attempts": 4},
    "connect_timeout": 3,
    "read_timeout": 10,
}
# Summary fields that name the replay's own targets, so they differ from the function's.
TARGET_FIELDS = ("queue_url", "buses", "bucket", "key")

__all__ = [
    "ColdStartBench",
    "ColdStartFailure",
    "ColdStartResult",
    "import_costs",
    "sqs_event",
]


@dataclass
class ChildRun:
    """One child process: its parsed result and the wall time of the whole process.

    `shaped` is for a same-work run: how many of its DynamoDB requests have the structure of the
    function's, and how many DynamoDB requests it made.
    """

    result: dict[str, Any]
    wall_s: float
    shaped: tuple[int, int] = (0, 0)

    @property
    def elapsed_s(self) -> float:
        return float(self.result["elapsed_s"])


@dataclass
class ColdStartResult:
    """Every run of one function's cold-start bench, keyed by process kind.

    The kinds are "function", "baseline", "sessions" (with session_baseline only) and "boto3".
    """

    request: FirstRequest
    runs: int
    first: dict[str, ChildRun]
    # The function module's path in the repository, such as functions/signup/app.py.
    source: str = ""
    timed: dict[str, list[ChildRun]] = field(default_factory=lambda: defaultdict(list))
    import_costs: list[tuple[str, int]] = field(default_factory=list)
    module_costs: list[tuple[str, int]] = field(default_factory=list)
    import_total_us: int = 0
    # DynamoDB steps of the same-work plan built from the function's shapes, of all its steps.
    shaped: tuple[int, int] = (0, 0)

    @property
    def unit(self) -> str:
        return self.request.unit

    @property
    def must_not_load(self) -> tuple[str, ...]:
        return self.request.must_not_load

    def median(self, kind: str, phase: str | None = None) -> float:
        """Return the median elapsed time of kind in seconds, or of one of its phases."""
        if phase is None:
            return statistics.median(run.elapsed_s for run in self.timed[kind])
        return statistics.median(
            float(run.result["phases"].get(phase, 0.0)) for run in self.timed[kind]
        )

    def median_wall(self, kind: str) -> float:
        return statistics.median(run.wall_s for run in self.timed[kind])


@dataclass(frozen=True)
class ColdStartFailure:
    """A function whose cold start the bench could not measure, and why."""

    unit: str
    logical_id: str
    reason: str


def call_shapes(calls: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """Return each call's operation, its summary without the fields that name replay targets,
    and its error code (None for a success)."""
    shapes = []
    for call in calls:
        summary = {key: value for key, value in call["summary"].items() if key not in TARGET_FIELDS}
        shapes.append(
            (operation_name(call), json.dumps(summary, sort_keys=True), call.get("error_code"))
        )
    return shapes


def provider_shapes(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return each provider request's method and host, which every run must repeat."""
    return [(call["method"], call["url"].split("/", 3)[2]) for call in calls]


def template_functions(service: LocalService) -> list[str]:
    """Return the logical id of every function in the service's template."""
    assert service.stack is not None
    return list(service.stack.runtime.functions)


class ColdStartBench:
    """Spawn the child processes against a started LocalService and collect their results."""

    def __init__(
        self,
        service: LocalService,
        workdir: Path,
        runs: int,
        requests: list[FirstRequest] | None = None,
    ) -> None:
        if service.stack is None:
            raise BenchFailedError("the local service is not started")
        self.service = service
        self.runtime = service.stack.runtime
        self.workdir = workdir
        self.runs = runs
        self.requests = first_requests() if requests is None else requests
        self.seeder = Seeder(service)
        self.context = ColdStartContext(service=service, seeder=self.seeder, workdir=workdir)
        self.failures: list[ColdStartFailure] = []
        self._environments = {
            request.logical_id: self._child_environment(self.runtime.functions[request.logical_id])
            for request in self.requests
        }

    def client(self, service_name: str) -> Any:
        """Return a cached client of the bench process for service_name."""
        return self.seeder.client(service_name)

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
                # Lambda names its runtime here, and the function's module freezes the objects
                # of its initialisation only in a Lambda runtime (idsentry.instance).
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "LANG": "C.UTF-8",
                "PYTHONPYCACHEPREFIX": str(self.workdir / "pycache"),
            }
        )
        # The local service adds the emulators' base URLs (TWILIO_BASE_URL and the like) and the
        # account page's URL to the runtime's environment, not to the template. A function
        # without them would call the real provider.
        for name, value in self.runtime.environment.items():
            if name.endswith("_BASE_URL") and name not in environment:
                environment[name] = check_loopback(value)
            elif name.endswith("_PAGE_URL") and name not in environment:
                environment[name] = value
        return environment

    def _spawn(
        self,
        target: FirstRequest,
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
        spec_path.unlink(missing_ok=True)
        if completed.returncode != 0 or not result_path.exists():
            raise BenchFailedError(
                f"the {target.unit} {spec['mode']} child exited with {completed.returncode}:\n"
                + completed.stderr[-4000:]
            )
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
        result_path.unlink()
        result["stderr"] = completed.stderr
        return ChildRun(result, wall_s)

    def _source(self, target: FirstRequest) -> str:
        function = self.runtime.functions[target.logical_id]
        module = function.handler.rpartition(".")[0].replace(".", "/") + ".py"
        if function.code_dir is None:
            return module
        return (function.code_dir / module).resolve().relative_to(REPOSITORY_ROOT).as_posix()

    def _function_spec(self, target: FirstRequest, index: int) -> dict[str, Any]:
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
            "event": target.event(self.context, index),
            "function": {
                "name": function.name,
                "arn": function.arn,
                "memory_mb": function.memory_mb,
                "timeout_s": function.timeout_s,
                "request_id": str(uuid.uuid4()),
            },
            "check_loaded": list(target.must_not_load),
            # The first run's calls are the ones the baseline replays, so only it keeps shapes.
            "record_shapes": index == 0,
        }

    def run_function(
        self, target: FirstRequest, index: int, python_options: tuple[str, ...] = ()
    ) -> ChildRun:
        """Serve run `index`'s request in a fresh process; raise unless its checks pass."""
        target.before_run(self.context, index)
        run = self._spawn(target, self._function_spec(target, index), python_options)
        target.check(self.context, run.result, index)
        return run

    def run_baseline(
        self,
        target: FirstRequest,
        recorded: dict[str, Any],
        replay_targets: ReplayTargets,
        session_per_client: bool = False,
    ) -> ChildRun:
        """Import the recorded modules, create the recorded clients and replay the calls."""
        plan = build_plan(recorded["calls"], replay_targets, self.client)
        dynamodb_steps = [step for step in plan if step["service"] == "dynamodb"]
        spec = {
            "mode": "baseline",
            "sys_path": [],
            "modules": recorded["modules"],
            "clients": list(dict.fromkeys(recorded["clients"])),
            "session_per_client": session_per_client,
            "client_config": CLIENT_CONFIG,
            "calls": plan,
            "provider_calls": target.replayed_provider_calls(recorded),
            **target.baseline_extras(self.context),
        }
        run = self._spawn(target, spec)
        run.shaped = (sum(step["shaped"] for step in dynamodb_steps), len(dynamodb_steps))
        return run

    def run_boto3_only(self, target: FirstRequest, service_name: str) -> ChildRun:
        """Import boto3 and create one client in a fresh process."""
        return self._spawn(target, {"mode": "boto3", "service": service_name})

    def _check_calls(
        self,
        target: FirstRequest,
        kind: str,
        run: ChildRun,
        expected: list[tuple[str, str, str | None]],
        expected_providers: list[tuple[str, str]] | None = None,
    ) -> None:
        shapes = call_shapes(run.result["calls"])
        if shapes != expected:
            different = next(
                (
                    index
                    for index, pair in enumerate(zip(shapes, expected, strict=False))
                    if pair[0] != pair[1]
                ),
                min(len(shapes), len(expected)),
            )
            raise BenchFailedError(
                f"the {kind} run made {len(shapes)} AWS calls, the first {target.unit} run "
                f"{len(expected)}; call {different} differs: "
                f"{shapes[different] if different < len(shapes) else 'none'} against "
                f"{expected[different] if different < len(expected) else 'none'}. The runs "
                "would not do the same work"
            )
        if expected_providers is not None:
            providers = provider_shapes(run.result["provider_calls"])
            if providers != expected_providers:
                raise BenchFailedError(
                    f"the {kind} run sent the provider requests {providers}, but the first "
                    f"{target.unit} run sent {expected_providers}"
                )

    def _settled(self) -> bool:
        """Return whether no queue, SMS or status callback has work left.

        SMS to the numbers in `held_sms_numbers` wait in the Twilio emulator on purpose.
        """
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
            if message["to"] in self.context.held_sms_numbers:
                continue
            if message["status"] not in FINAL_SMS_STATUSES and not message["held_for_review"]:
                return False
        return self.service.twilio.wait_for_callbacks(0.1)

    def empty_queues(self) -> None:
        """Receive and delete every message of every mapped queue, so none is processed.

        Messages are deleted rather than purged, because SQS (and moto) allow one PurgeQueue
        per queue every 60 seconds.
        """
        sqs = self.client("sqs")
        for queue_url in dict.fromkeys(mapping.queue_url for mapping in self.runtime.mappings):
            while messages := sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", []):
                deleted = sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(messages)
                    ],
                )
                if deleted.get("Failed"):
                    raise BenchFailedError(f"deleting messages from {queue_url} failed")

    @contextmanager
    def _pollers_paused(self) -> Iterator[None]:
        """Wait until earlier work has settled, stop the queue pollers, and restart them after.

        Every mapped queue is emptied before the restart, so nothing that the runs queued is
        processed.
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
            self.empty_queues()
            self.runtime.start()

    def run(self) -> list[ColdStartResult]:
        """Measure each function; a function that cannot be measured is kept in `failures`."""
        results = []
        for target in self.requests:
            try:
                results.append(self.measure(target))
            except (BenchFailedError, ReplayError) as exc:
                self.failures.append(ColdStartFailure(target.unit, target.logical_id, str(exc)))
                print(f"cold start of {target.unit} not measured: {exc}", file=sys.stderr)
        measured = {target.logical_id for target in self.requests}
        if len(self.requests) == len(first_requests()):
            for logical_id in template_functions(self.service):
                if logical_id not in measured:
                    self.failures.append(
                        ColdStartFailure(
                            logical_id,
                            logical_id,
                            "no first request is defined for it in infra/bench/first_requests",
                        )
                    )
        return results

    def measure(self, target: FirstRequest) -> ColdStartResult:
        """Seed, stop the pollers, and run the first runs, the timed runs and the profile run."""
        count = self.runs + 2
        cleaned = False
        try:
            target.seed(self.context, count)
            with self._pollers_paused():
                try:
                    target.collect(self.context, count)
                    with _collector_paused():
                        return self._measure(target)
                finally:
                    cleaned = True
                    target.cleanup(self.context)
        finally:
            # Seeding or settling failed before the runs: undo what seeding set up, such as a
            # paused Twilio emulator, so the next function can be measured.
            if not cleaned:
                target.cleanup(self.context)

    def _measure(self, target: FirstRequest) -> ColdStartResult:
        """Run the first (bytecode-compiling) runs, then the interleaved timed runs."""
        first_run = self.run_function(target, 0)
        recorded = first_run.result
        expected = call_shapes(recorded["calls"])
        expected_providers = provider_shapes(recorded["provider_calls"])
        self._check_calls(target, target.unit, first_run, expected, expected_providers)
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
            request=target,
            runs=self.runs,
            first=first,
            source=self._source(target),
            shaped=first["baseline"].shaped,
        )
        self._check_calls(target, "same-work", first["baseline"], expected)
        if target.session_baseline:
            self._check_calls(target, "same-work", first["sessions"], expected)

        for index in range(1, self.runs + 1):
            run = self.run_function(target, index)
            self._check_calls(target, target.unit, run, expected, expected_providers)
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

        profiled = self.run_function(target, self.runs + 1, ("-X", "importtime"))
        costs = import_costs(profiled.result["stderr"])
        result.import_costs, result.module_costs, result.import_total_us = costs
        return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause this process's garbage collector during one function's runs, and collect after.

    Moto, the emulators and the local runtime serve the children's requests from threads of
    this process, whose heap contains the whole local service. A full collection there stalled a
    request at random, by up to a few hundred milliseconds, in the function's and the baselines'
    runs alike.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


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
