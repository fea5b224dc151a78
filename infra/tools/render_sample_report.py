"""Write the sample monthly report (HTML and PDF) and the sample dossier in both locales.

    .venv/bin/python -m infra.tools.render_sample_report --out DIR [--measure]

The data is the fixed story of `infra.tools.report_samples`, so the files are the same on
every run and suit screenshots. `--measure` also prints how long rendering takes for a
subscriber with 20 confirmed exposures. It then prints how long importing the reports
modules takes in a fresh interpreter. It asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LAYER = str(ROOT / "layers" / "idsentry" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)

from idsentry.i18n import SUPPORTED_LOCALES  # noqa: E402
from idsentry.reports.document import report_document  # noqa: E402
from idsentry.reports.dossier import dossier_document  # noqa: E402
from idsentry.reports.html import render_html  # noqa: E402
from idsentry.reports.model import DossierData, from_records, report_data  # noqa: E402
from idsentry.reports.pdf import render_pdf  # noqa: E402
from infra.tools.report_samples import (  # noqa: E402
    GENERATED_AT,
    MASKED,
    REPORT_MONTH,
    SUBSCRIBER_ID,
    many_exposures,
    sample_records,
)

# The sample story has 5 confirmed exposures; this many more make 20.
_EXTRA_EXPOSURES = 15
_RUNS = 5


def write_samples(out: Path) -> list[Path]:
    """Write the report and dossier files for both locales into `out`. Returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for locale in SUPPORTED_LOCALES:
        partition, related = sample_records(locale)
        facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
        report = report_document(report_data(facts, REPORT_MONTH, GENERATED_AT))
        dossier = dossier_document(
            DossierData(facts=facts, generated_at=GENERATED_AT, audience="police")
        )
        files = {
            f"report-{locale}.html": render_html(report).encode("utf-8"),
            f"report-{locale}.pdf": render_pdf(report),
            f"dossier-{locale}.html": render_html(dossier).encode("utf-8"),
            f"dossier-{locale}.pdf": render_pdf(dossier),
        }
        for name, content in files.items():
            path = out / name
            path.write_bytes(content)
            written.append(path)
    return written


def measure_rendering() -> None:
    """Print the median and minimum time to render HTML and PDF for 20 confirmed exposures."""
    partition, related = many_exposures(_EXTRA_EXPOSURES)
    facts = from_records(SUBSCRIBER_ID, partition, related, MASKED)
    confirmed = sum(1 for exposure in facts.exposures if exposure.status == "confirmed")
    data = report_data(facts, REPORT_MONTH, GENERATED_AT)
    timings: dict[str, list[float]] = {"document": [], "html": [], "pdf": []}
    pages = 0
    for _ in range(_RUNS):
        start = time.perf_counter()
        document = report_document(data)
        laid_out = time.perf_counter()
        render_html(document)
        html_done = time.perf_counter()
        pdf = render_pdf(document)
        pdf_done = time.perf_counter()
        timings["document"].append(laid_out - start)
        timings["html"].append(html_done - laid_out)
        timings["pdf"].append(pdf_done - html_done)
        pages = pdf.count(b"/Type /Page\n")
    print(f"rendering, {confirmed} confirmed exposures, {_RUNS} runs (median / min, ms):")
    for step, values in timings.items():
        print(f"  {step:8s} {statistics.median(values) * 1000:7.1f} / {min(values) * 1000:7.1f}")
    print(f"  pdf pages {pages}")


def measure_imports() -> None:
    """Print the import time of the reports modules in fresh interpreters, alone and after boto3."""
    cases = {
        "idsentry.reports": "import idsentry.reports",
        "idsentry.reports.html (+document, assess, model)": "import idsentry.reports.html",
        "idsentry.reports.pdf (+fpdf2, fontTools, Pillow)": "import idsentry.reports.pdf",
        "reports.html and reports.pdf after boto3": "import idsentry.reports.html, idsentry.reports.pdf",
    }
    print("import time in a fresh interpreter (median of 3, ms):")
    for label, statement in cases.items():
        prelude = "import boto3; " if "after boto3" in label else ""
        code = (
            f"import sys, time; sys.path.insert(0, {_LAYER!r}); {prelude}"
            f"start = time.perf_counter(); {statement}; "
            "print(time.perf_counter() - start)"
        )
        values = [
            float(
                subprocess.run(  # noqa: S603 (this interpreter running a fixed import statement)
                    [sys.executable, "-c", code], check=True, capture_output=True, text=True
                ).stdout
            )
            for _ in range(3)
        ]
        print(f"  {label:52s} {statistics.median(values) * 1000:7.1f}")


def main(argv: list[str] | None = None) -> int:
    """Write the samples, and with --measure print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the files")
    parser.add_argument(
        "--measure", action="store_true", help="also print rendering and import times"
    )
    args = parser.parse_args(argv)

    for path in write_samples(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    if args.measure:
        measure_rendering()
        measure_imports()
    return 0


if __name__ == "__main__":
    sys.exit(main())
