"""Signup cold start through its first request, against two baselines, each in a fresh process.

- "signup": `child.py` imports `functions/signup/app.py` as Lambda does (its directory and
  the layer on sys.path, the function's template environment) and serves one
  `POST /v1/signups` event with a new mobile number.
- "same work": a process that imports the same third-party modules that the signup process
  had loaded after its response, creates the same boto3 clients on one session and replays
  the same AWS operations with bench-only keys and targets (see `infra.bench.replay`).
- "same work, a session per client": the same, with a new boto3 session for each client as
  `idsentry.adapters.aws.client` creates them, to show what the extra sessions cost.
- "boto3 only": a process that imports boto3 and creates one client, with no request.

Bytecode is cached under a fresh PYTHONPYCACHEPREFIX for each bench run. The project's
Makefile sets PYTHONDONTWRITEBYTECODE, so without that cache every run would compile every
imported module from source. The first run of each kind fills the cache and is reported
separately. The timed runs are interleaved (one of each kind in turn), so that drift of the
machine's load affects every kind alike. The queue pollers of the local service are paused
meanwhile, so that the notifier's work on earlier signups does not compete for CPU.
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
from infra.bench.replay import build_plan, prepare_targets, recorded_tables
from infra.bench.request_counts import SIGNUP_FUNCTION, BenchFailedError, operation_name
from infra.bench.workload import IdentityFactory, signup_event
from infra.local.provision import DUMMY_CREDENTIAL
from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

CHILD = Path(__file__).resolve().with_name("child.py")
PYTHON = REPOSITORY_ROOT / ".venv" / "bin" / "python"
# Modules that the signup function must not load: only other functions need these SDKs.
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
    """Every run of the cold-start bench, and what the first signup run recorded."""

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

    def __init__(self, service: LocalService, workdir: Path, runs: int) -> None:
        if service.stack is None:
            raise BenchFailedError("the local service is not started")
        self.service = service
        self.runtime = service.stack.runtime
        self.function = self.runtime.functions[SIGNUP_FUNCTION]
        self.workdir = workdir
        self.runs = runs
        self.identities = IdentityFactory()
        self._clients: dict[str, Any] = {}
        self.environment = self._child_environment(service)

    def client(self, service_name: str) -> Any:
        """Return a cached client of the bench process for service_name."""
        if service_name not in self._clients:
            self._clients[service_name] = self.runtime.client(service_name)
        return self._clients[service_name]

    def _child_environment(self, service: LocalService) -> dict[str, str]:
        """Return the signup function's environment from the template, pointed at moto.

        Nothing is inherited from the bench process, so no credential, proxy or profile
        of the caller's shell reaches the children.
        """
        assert service.stack is not None
        environment = dict(self.function.environment)
        environment.update(
            {
                "AWS_ENDPOINT_URL": service.stack.endpoint_url,
                "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
                "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
                "AWS_DEFAULT_REGION": service.stack.provisioned.region,
                "AWS_REGION": service.stack.provisioned.region,
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

    def _spawn(self, spec: dict[str, Any], python_options: tuple[str, ...] = ()) -> ChildRun:
        """Run child.py with spec and return its result; raise BenchFailedError on failure."""
        name = uuid.uuid4().hex
        spec_path = self.workdir / f"{name}.spec.json"
        result_path = self.workdir / f"{name}.result.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")

        command = [str(PYTHON), "-P", *python_options, str(CHILD), str(spec_path), str(result_path)]
        started = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 (fixed interpreter and script of this repository)
            command,
            env=self.environment,
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

    def _signup_spec(self) -> dict[str, Any]:
        from idsentry.consents import CURRENT_VERSIONS

        module, _, function_name = self.function.handler.rpartition(".")
        if self.function.code_dir is None:
            raise BenchFailedError(f"{SIGNUP_FUNCTION} has no local CodeUri")
        layers = [str(layer / "python") for layer in self.function.layer_dirs]
        consents = {str(kind): version for kind, version in CURRENT_VERSIONS.items()}
        return {
            "mode": "signup",
            "sys_path": [str(self.function.code_dir), *layers],
            "handler_module": module,
            "handler_function": function_name,
            "event": signup_event(self.identities.new(), consents),
            "function": {
                "name": self.function.name,
                "arn": self.function.arn,
                "memory_mb": self.function.memory_mb,
                "timeout_s": self.function.timeout_s,
                "request_id": str(uuid.uuid4()),
            },
            "check_loaded": list(MUST_NOT_LOAD),
        }

    def run_signup(self, python_options: tuple[str, ...] = ()) -> ChildRun:
        """Serve one signup in a fresh process; raise unless it returned 202."""
        run = self._spawn(self._signup_spec(), python_options)
        if run.result["status"] != 202:
            raise BenchFailedError(
                f"the signup child got HTTP {run.result['status']}, expected 202; its output:\n"
                + run.result["stderr"][-4000:]
            )
        return run

    def run_baseline(
        self, recorded: dict[str, Any], targets: Any, session_per_client: bool = False
    ) -> ChildRun:
        """Import the recorded modules, create the recorded clients and replay the calls."""
        spec = {
            "mode": "baseline",
            "sys_path": [],
            "modules": recorded["modules"],
            "clients": list(dict.fromkeys(recorded["clients"])),
            "session_per_client": session_per_client,
            "client_config": CLIENT_CONFIG,
            "calls": build_plan(recorded["calls"], targets, self.client),
        }
        return self._spawn(spec)

    def run_boto3_only(self, service_name: str) -> ChildRun:
        """Import boto3 and create one client in a fresh process."""
        return self._spawn({"mode": "boto3", "service": service_name})

    def _check_calls(self, kind: str, run: ChildRun, expected: list[tuple[str, str]]) -> None:
        calls = run.result["calls"]
        if call_shapes(calls) != expected:
            raise BenchFailedError(
                f"the {kind} run made {[operation_name(c) for c in calls]}, but the first signup "
                f"run made {[name for name, _ in expected]}; the baseline would not do the "
                "same work"
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
        one reads those codes.
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
            self.client("sqs").purge_queue(
                QueueUrl=self.function.environment["NOTIFICATION_QUEUE_URL"]
            )
            self.runtime.start()

    def run(self) -> ColdStartResult:
        """Run the first (bytecode-compiling) runs, then the interleaved timed runs."""
        with self._pollers_paused():
            return self._run()

    def _run(self) -> ColdStartResult:
        first_signup = self.run_signup()
        recorded = first_signup.result
        expected = call_shapes(recorded["calls"])
        self._check_calls("signup", first_signup, expected)
        if not recorded["clients"]:
            raise BenchFailedError("the signup child created no AWS client")

        targets = prepare_targets(
            self.client("dynamodb"),
            self.client("sqs"),
            self.client("events"),
            recorded_tables(recorded["calls"]),
        )
        first_client = recorded["clients"][0]
        result = ColdStartResult(
            runs=self.runs,
            first={
                "signup": first_signup,
                "baseline": self.run_baseline(recorded, targets),
                "sessions": self.run_baseline(recorded, targets, session_per_client=True),
                "boto3": self.run_boto3_only(first_client),
            },
        )
        self._check_calls("same-work", result.first["baseline"], expected)
        self._check_calls("same-work", result.first["sessions"], expected)

        for _ in range(self.runs):
            signup = self.run_signup()
            self._check_calls("signup", signup, expected)
            baseline = self.run_baseline(recorded, targets)
            self._check_calls("same-work", baseline, expected)
            sessions = self.run_baseline(recorded, targets, session_per_client=True)
            self._check_calls("same-work", sessions, expected)
            boto3_only = self.run_boto3_only(first_client)
            self._check_calls("boto3-only", boto3_only, [])
            result.timed["signup"].append(signup)
            result.timed["baseline"].append(baseline)
            result.timed["sessions"].append(sessions)
            result.timed["boto3"].append(boto3_only)

        profiled = self.run_signup(("-X", "importtime"))
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
