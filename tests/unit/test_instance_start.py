"""Function instance start-up: deferred model schemas, the GC freeze and late imports."""

from __future__ import annotations

import ast
import gc
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import idsentry
from idsentry.instance import freeze_init_objects

pytestmark = pytest.mark.unit

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def _layer_models() -> list[type[BaseModel]]:
    for module in pkgutil.walk_packages(idsentry.__path__, "idsentry."):
        importlib.import_module(module.name)
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("idsentry."):
                found.append(subclass)
    return found


def test_layer_models_defer_and_build():
    models = _layer_models()

    assert len(models) > 40
    not_deferred = [
        model.__qualname__ for model in models if not model.model_config.get("defer_build")
    ]
    assert not_deferred == []
    for model in models:
        # A deferred schema is built on first use, so a broken annotation would show only in
        # the first request that validates the model. Building each one here finds it sooner.
        assert model.model_rebuild(force=True) is True, model.__qualname__


@pytest.mark.parametrize(
    "app", sorted(FUNCTIONS.glob("*/app.py")), ids=lambda path: path.parent.name
)
def test_app_module_setup_ends_with_freeze(app: Path):
    module = ast.parse(app.read_text(encoding="utf-8"))
    statements = [
        node
        for node in module.body
        if not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]

    assert statements, f"{app} has no module-level setup"
    last = statements[-1]
    assert isinstance(last, ast.Expr)
    assert isinstance(last.value, ast.Call)
    assert isinstance(last.value.func, ast.Name)
    assert last.value.func.id == "freeze_init_objects"


@pytest.mark.parametrize(
    ("execution_env", "frozen"),
    [("AWS_Lambda_python3.12", True), (None, False), ("AWS_ECS_FARGATE", False)],
)
def test_freeze_init_objects_only_in_lambda(monkeypatch, execution_env, frozen):
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    if execution_env is None:
        monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    else:
        monkeypatch.setenv("AWS_EXECUTION_ENV", execution_env)

    freeze_init_objects(load=("json",))

    # Once before the modules in `load` are imported and once after.
    assert calls == (["freeze", "freeze"] if frozen else [])


def test_admin_routes_tables_match_modules():
    from idsentry.routes import admin_report_routes, admin_routes, reconcile_routes

    assert admin_routes.RECONCILE_ROUTES == reconcile_routes.ROUTES
    assert admin_routes.REPORT_ROUTES == admin_report_routes.ROUTES


def test_parse_notification_job_by_kind():
    from pydantic import TypeAdapter, ValidationError

    from idsentry.models.jobs import AlertJob, NotificationJob, OtpJob, parse_notification_job

    otp = OtpJob(job_id="job-1", signup_id="sgn-1", code_id="code-1")
    union = TypeAdapter(NotificationJob)

    assert parse_notification_job(otp.model_dump_json()) == otp
    assert parse_notification_job(otp.model_dump_json()) == union.validate_json(
        otp.model_dump_json()
    )
    assert not isinstance(parse_notification_job(otp.model_dump_json()), AlertJob)
    for body in ("not json", "[1]", '{"kind": "unknown", "job_id": "j"}', '{"job_id": "j"}'):
        with pytest.raises(ValidationError):
            parse_notification_job(body)
    with pytest.raises(ValidationError, match="signup_id"):
        parse_notification_job('{"kind": "otp", "job_id": "j", "code_id": "c"}')


def test_report_worker_preloads_rendering_modules():
    # In a fresh interpreter: after the report worker's modules, drawing a PDF imports no further
    # module of fpdf2, fontTools or the report package, so the instance freezes all of them.
    script = """
import sys
import importlib
from idsentry.services.subscriber_reports import RENDERING_MODULES
for name in RENDERING_MODULES:
    importlib.import_module(name)
loaded = set(sys.modules)
from idsentry.reports.document import report_document
from idsentry.reports.model import from_records, report_data
from idsentry.reports.pdf import render_pdf
from infra.tools.report_samples import GENERATED_AT, MASKED, REPORT_MONTH, SUBSCRIBER_ID
from infra.tools.report_samples import sample_records
facts = from_records(SUBSCRIBER_ID, *sample_records("zh-CN"), MASKED)
render_pdf(report_document(report_data(facts, REPORT_MONTH, GENERATED_AT)))
later = set(sys.modules) - loaded
print(sorted(name for name in later if name.startswith(("fpdf", "fontTools", "idsentry.reports"))))
"""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(  # noqa: S603 (this interpreter, a script written here)
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONPATH": f"{root}:{root / 'layers/idsentry/python'}", "PATH": "/usr/bin:/bin"},
    )

    assert result.stdout.strip() == "[]"
