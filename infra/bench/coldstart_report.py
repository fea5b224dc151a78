"""The cold-start section of docs/benchmarks.md: how it is measured, then every function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.bench.coldstart import ColdStartFailure, ColdStartResult

# Our own overhead (a function over its same-work baseline) that each cold-start figure aims for.
OVERHEAD_TARGET = 1.15
IMPORT_ROWS = 12


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "n/a"


def _verdict(result: ColdStartResult) -> str:
    ratio = result.median("function") / result.median("baseline")
    return "met" if ratio <= OVERHEAD_TARGET else "not met"


def cold_start_section(
    results: Sequence[ColdStartResult], failures: Sequence[ColdStartFailure] = ()
) -> str:
    """Return the cold-start section: the method, the detailed functions, then a table of the rest."""
    runs = results[0].runs if results else 0
    with_sessions = [result.unit for result in results if _has_sessions(result)]
    sessions_scope = f" ({', '.join(with_sessions)} only)" if with_sessions else ""
    intro = [
        "## Cold start through the first request",
        "",
        f"Median of {runs} runs per process kind, each a fresh `.venv/bin/python` process. "
        "The time runs inside the process from before the first import of the measured code "
        "to after the last response, so interpreter start-up is left out (the process wall "
        "time column includes it). Each function is compared with baselines from the same "
        "bench run:",
        "",
        "- the **function** process imports the function's `app.py` from its directory with "
        "the layer on `sys.path`, in the function's environment from `template.yaml`, and "
        "serves one request, whose outcome the bench checks (named below per function). "
        "Where the request needs state (a subscriber, a sign-in, a queued job), the bench "
        "makes it before the runs through the product's own paths, and every run gets a new "
        "event of its own (a new number, a new job, a new breach file), so that each run does "
        "the same work.",
        "- **same work** imports the third-party modules that the function's process had "
        "loaded after its response and creates the same boto3 clients on one session. It "
        "makes the same AWS operations in the same order, with bench-only keys and targets: "
        "DynamoDB items under `BENCH#` keys in the same tables, a bench-only SQS queue and "
        "EventBridge bus, S3 objects under `bench-replay/` in the same buckets, data keys of "
        "the same KMS keys, the same secrets, e-mails from the same sender to a bench address. "
        "Its DynamoDB requests have the structure of the function's, because moto's time for "
        "a request depends on it. Its reads find items with the same attributes, types and "
        "value sizes as the items the function read (strings replaced by `x`, numbers by "
        "`1`). Its writes send the function's own update and condition expressions, with "
        "values of the same types and sizes. A write keeps that structure only when a trial "
        "on another bench key ends as the function's write did; otherwise, and for the other "
        "services, requests are padded to the function's request size. A call that failed for "
        "the function (a conditional write whose condition was false) fails the same way. It "
        "then sends the function's requests to the Stripe, Twilio and HIBP emulators again, "
        "with the same method, URL, headers and body, through `requests`: the SDKs' own work "
        "on each request counts as the function's overhead.",
        f"- **same work, a session per client**{sessions_scope} is the same with a new boto3 "
        "session for each client, as `idsentry.adapters.aws.client` created them before it "
        "shared one session. Each session loads its own copy of botocore's endpoint and "
        "service data, so this row shows what sharing the session saves.",
        "- **boto3 only** imports boto3 and creates one client of the service that the "
        "function called first, with no request.",
        "",
        "Every run records its AWS calls with botocore event handlers and its other HTTP "
        "requests with a wrapper of urllib3 (both installed inside the timed span, in every "
        "kind), and the bench checks that each function and same-work run made the same "
        "operations, with the same error codes, as the function's first run.",
        "",
        "Every process gets Lambda's `AWS_EXECUTION_ENV`, so each function's module freezes "
        "the objects of its initialisation for the garbage collector when its setup ends "
        "(`idsentry.instance.freeze_init_objects`), and the same-work process freezes after "
        "its imports: later collections skip those objects in both. A function whose every "
        "request uses a provider's SDK or the report renderers imports them before it freezes "
        "(the `load` argument). It pays for that import in the cold start as before, but its "
        "first request's collections do not scan those modules again. The own overhead "
        "contains "
        "everything the function does besides those imports, clients and requests, so its "
        "real work counts too. The report worker renders a report as HTML and PDF, and the "
        "reconciliation worker compares Stripe with the ledger and writes four files. No "
        "baseline does either.",
        "",
        "Bytecode is cached in a fresh directory (`PYTHONPYCACHEPREFIX`) for each bench run, "
        "because the project's virtual environment contains no `.pyc` files. The first run "
        "of each kind compiles the modules that no earlier run compiled, and it is not part "
        "of the medians. The timed runs of one function are interleaved, one of each kind in "
        "turn, so that drift of the machine's load affects every kind alike. The local "
        "service's queue pollers are paused during one function's runs, so the consumers' "
        "work on earlier requests does not compete for the CPU. Every mapped queue is emptied "
        "before they restart, so nothing that the runs queued is processed. The "
        "bench's own process, whose threads serve moto, the emulators and the local runtime, "
        "does not collect garbage during one function's runs: its full collections stalled "
        "requests of every kind at random, by up to a few hundred milliseconds.",
    ]
    detailed = [result for result in results if result.request.detailed]
    compact = [result for result in results if not result.request.detailed]
    parts = ["\n".join(intro), *(function_section(result) for result in detailed)]
    if compact or failures:
        parts.append(other_functions_section(compact, failures))
    return "\n\n".join(parts)


def _has_sessions(result: ColdStartResult) -> bool:
    return "sessions" in result.first


def _sdk_text(result: ColdStartResult) -> str:
    """Return which of the SDKs that must stay unloaded were loaded, in a few words."""
    loaded = result.first["function"].result["loaded"]
    if not result.must_not_load:
        return "none: it calls Stripe and Twilio"
    return ", ".join(
        f"`{module}`" if not loaded[module] else f"`{module}` LOADED"
        for module in result.must_not_load
    )


def other_functions_section(
    results: Sequence[ColdStartResult], failures: Sequence[ColdStartFailure] = ()
) -> str:
    """Return one row per function, each function's first request, and the unmeasured ones."""
    rows = []
    for result in results:
        function_ms = result.median("function")
        same_work = result.median("baseline")
        boto3_only = result.median("boto3")
        rows.append(
            [
                f"`{result.unit}`",
                _ms(function_ms),
                _ms(same_work),
                f"{_ratio(function_ms, same_work)} ({_verdict(result)})",
                _ms(boto3_only),
                _ratio(function_ms, boto3_only),
                f"{_ms(result.median('function', 'import'))} + "
                f"{_ms(result.median('function', 'first_request'))}",
                str(len(result.first["function"].result["calls"])),
                str(len(result.first["function"].result["provider_calls"])),
                _sdk_text(result),
            ]
        )
    header = [
        "function",
        "median",
        "same work",
        f"own overhead (≤ {OVERHEAD_TARGET:.2f}×)",
        "boto3 only",
        "total",
        "import + first request",
        "AWS calls",
        "provider requests",
        "SDKs not loaded",
    ]
    parts = [
        "### Every other function",
        "",
        "Medians as above, one row per function: the function's process, its same-work "
        "baseline and boto3 only. **Own overhead** is the function over its same-work "
        "baseline, **total** the function over boto3 only. The import and first "
        "request columns split the function's median. AWS calls and provider requests (Stripe, "
        "Twilio, HIBP) are those of one first request; every run made the same ones. The last "
        "column names the SDKs whose modules the function's process had not loaded after its "
        "request, because only other functions call those providers.",
        "",
        table(header, rows),
    ]
    if results:
        parts.extend(["", "What each function's process served, and what every run had to do:", ""])
        for result in results:
            request = result.request
            line = (
                f"- `{result.unit}` ({request.title}, `{result.source}`): {request.request}. "
                f"Every run must {request.outcome}."
            )
            if request.note:
                line += f" {request.note}"
            if result.shaped[1]:
                line += f" In its same-work process, {_shaped_text(result.shaped)}."
            parts.append(line)
    if failures:
        parts.extend(["", "#### Functions not measured", ""])
        parts.extend(f"- `{failure.unit}`: {failure.reason}" for failure in failures)
    return "\n".join(parts)


def _replay_targets_text(calls: Sequence[dict[str, Any]], shaped: tuple[int, int]) -> str:
    """Return the sentences on where the same-work process sends each kind of recorded call."""
    services = {call["service"] for call in calls}
    sentences = []
    if "dynamodb" in services:
        sentences.append(
            "Its reads and writes use `BENCH#` keys in the same tables, and "
            f"{_shaped_text(shaped)}."
        )
    operations = {(call["service"], call["operation"]) for call in calls}
    if ("kms", "GenerateDataKey") in operations:
        sentences.append("Its data keys come from the same KMS key.")
    if ("kms", "Decrypt") in operations:
        sentences.append(
            "It unwraps data keys of the same KMS key, generated by the bench for bench owners."
        )
    if "secretsmanager" in services:
        sentences.append("It reads the same secrets.")
    if "sqs" in services:
        sentences.append("Its messages go to a bench-only SQS queue that no function consumes.")
    if "events" in services:
        sentences.append("Its events go to a bench-only EventBridge bus without rules.")
    if not sentences:
        return ""
    return " ".join([*sentences, "No replayed request reaches a consumer."])


def _shaped_text(shaped: tuple[int, int]) -> str:
    built, total = shaped
    if total == 1:
        has = "has" if built else "does not have"
        return f"its one DynamoDB request {has} the structure of the function's"
    if built == total:
        return f"all {total} of its DynamoDB requests have the structure of the function's"
    return (
        f"{built} of its {total} DynamoDB requests have the structure of the function's "
        f"(the other {total - built} are padded to size)"
    )


def _figures_table(result: ColdStartResult, name: str) -> str:
    measured = result.median("function")
    same_work = result.median("baseline")
    boto3_only = result.median("boto3")
    rows = [
        [
            f"our own overhead: {name} vs the same work",
            _ms(measured),
            _ms(same_work),
            _ratio(measured, same_work),
            f"≤ {OVERHEAD_TARGET:.2f}×: {_verdict(result)}",
        ],
        [
            f"total: {name} vs boto3 with one client",
            _ms(measured),
            _ms(boto3_only),
            _ratio(measured, boto3_only),
            "none set",
        ],
    ]
    if _has_sessions(result):
        sessions = result.median("sessions")
        rows.extend(
            [
                [
                    "same work with a boto3 session per client vs one session",
                    _ms(sessions),
                    _ms(same_work),
                    _ratio(sessions, same_work),
                    "none set",
                ],
                [
                    f"{name} vs the same work with a session per client",
                    _ms(measured),
                    _ms(sessions),
                    _ratio(measured, sessions),
                    "none set",
                ],
            ]
        )
    return table(["figure", "value", "baseline", "ratio", "target"], rows)


def _phases_table(result: ColdStartResult, name: str) -> str:
    labels = {
        "function": name,
        "baseline": "same work",
        "sessions": "same work, a session per client",
        "boto3": "boto3 only",
    }
    rows = []
    for kind, label in labels.items():
        runs = result.timed[kind]
        if not runs:
            continue
        phases = runs[0].result["phases"]
        phase_text = ", ".join(
            f"{phase.replace('_', ' ')} {_ms(result.median(kind, phase))}" for phase in phases
        )
        rows.append(
            [
                label,
                _ms(result.median(kind)),
                f"{_ms(min(run.elapsed_s for run in runs))} to "
                f"{_ms(max(run.elapsed_s for run in runs))}",
                phase_text,
                _ms(result.median_wall(kind)),
            ]
        )
    return table(["process", "median", "range", "median per phase", "process wall time"], rows)


def _import_tables(result: ColdStartResult) -> tuple[str, str]:
    package_rows = [
        [
            f"`{package}`",
            f"{micros / 1000:.1f} ms",
            f"{100 * micros / result.import_total_us:.0f} %",
        ]
        for package, micros in result.import_costs[:IMPORT_ROWS]
    ]
    module_rows = [
        [f"`{module}`", f"{micros / 1000:.1f} ms"]
        for module, micros in result.module_costs[:IMPORT_ROWS]
    ]
    return (
        table(["package", "self time of its modules", "share"], package_rows),
        table(["module", "self time"], module_rows),
    )


def function_section(result: ColdStartResult) -> str:
    """Return one function's cold-start subsection: ratios, phases, checks and import costs."""
    request = result.request
    name = result.unit
    first = result.first["function"].result
    operations = ", ".join(f"{call['service']}:{call['operation']}" for call in first["calls"])
    function_bytes = sum(call["request_bytes"] for call in first["calls"])
    baseline_bytes = sum(call["request_bytes"] for call in result.first["baseline"].result["calls"])
    packages = sorted({module.partition(".")[0] for module in first["modules"]})
    loaded = ", ".join(
        f"`{module}` {'LOADED (it should not be)' if first['loaded'][module] else 'not loaded'}"
        for module in result.must_not_load
    )
    packages_table, modules_table = _import_tables(result)

    parts = [
        f"### {request.title}",
        "",
        f"The {name} process imports `{result.source}` and serves {request.request}. Every "
        f"run must {request.outcome}. The same-work process imports the "
        f"{len(first['modules'])} modules of {len(packages)} packages that the {name} process "
        f"had loaded. It creates the clients {', '.join(dict.fromkeys(first['clients']))} and "
        f"makes the operations {operations}. {_replay_targets_text(first['calls'], result.shaped)} Request "
        f"bodies: {name} {function_bytes} bytes, same work {baseline_bytes} bytes.",
        "",
        _figures_table(result, name),
    ]
    if _has_sessions(result):
        extra = result.median("sessions") - result.median("baseline")
        parts.extend(
            [
                "",
                f"A new boto3 session per client costs {_ms(extra)} more than one shared "
                f"session; the {name} function shares one session.",
            ]
        )
    parts.extend(
        [
            "",
            _phases_table(result, name),
            "",
            f"The first {name} run, which compiled the modules that no earlier run had "
            f"compiled, took {_ms(result.first['function'].elapsed_s)}. After the {name} "
            f"process served its request: {loaded}.",
        ]
    )
    if request.note:
        parts.extend(["", request.note])
    parts.extend(
        [
            "",
            f"#### Largest import costs of the {name} process",
            "",
            f"From one more {name} run under `python -X importtime`, which adds its own "
            f"overhead: {result.import_total_us / 1000:.0f} ms of imports in total, summed per "
            "top-level package (`app` is the function module), and the largest single modules. "
            "Imports made while the first request runs count too.",
            "",
            packages_table,
            "",
            modules_table,
        ]
    )
    return "\n".join(parts)
