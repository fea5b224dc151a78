"""Incident dossiers: one PDF a subscriber hands to the police, a bank or a carrier.

`create_dossier` renders the dossier of the subscriber's confirmed exposures (all, or the
breaches the request names) with the report renderer, stores it under
`reports/{subscriber_id}/dossiers/`, records `DOSSIER#{dossier_id}` and returns a download URL
that works for a few minutes. Identifiers appear only in their stored masked forms. A
subscriber requests one through the account API, and support staff through the admin API,
which writes the staff member's audit record in the same transaction as the item.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from idsentry.adapters.table import put_write
from idsentry.errors import FieldProblem, NotFoundError, RequestValidationError, pydantic_problems
from idsentry.i18n import Locale
from idsentry.object_keys import dossier_file_key
from idsentry.reports.model import DossierData, ReportDataError
from idsentry.services.audit import AuditRecord, AuditTrail
from idsentry.services.subscriber_reports import LINK_SECONDS, ReportDeps, subscriber_facts

logger = logging.getLogger(__name__)

DOSSIER_PREFIX = "DOSSIER#"
MAX_BREACHES = 50
MAX_REASON_LENGTH = 1000


class DossierRequest(BaseModel):
    """The body of a dossier request: who it is for, and which breaches (default: all)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    audience: Literal["police", "bank", "carrier", "general"] = "general"
    breach_names: list[str] | None = Field(default=None, min_length=1, max_length=MAX_BREACHES)


class StaffDossierRequest(DossierRequest):
    """A staff member's dossier request: also why (audited) and, optionally, the language."""

    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON_LENGTH)
    ]
    # None renders in the subscriber's own language.
    locale: Literal["zh-CN", "en"] | None = None


@dataclass(frozen=True)
class StaffRequester:
    """A staff member who makes a subscriber's dossier: who (IAM ARN), why, and the trail."""

    trail: AuditTrail
    actor: str
    request_id: str
    reason: str


def parse_dossier_request(payload: dict[str, Any]) -> DossierRequest:
    """Return the request. Raises RequestValidationError naming each invalid field.

    An `audience` that is not one of the four gets a message that lists them.
    """
    try:
        return DossierRequest.model_validate(payload)
    except ValidationError as exc:
        # pydantic_problems returns one problem per error, in the same order.
        problems = pydantic_problems(exc)
        for index, error in enumerate(exc.errors()):
            if error["loc"] == ("audience",) and error["type"] == "literal_error":
                problems[index] = FieldProblem("audience", "dossier.audience_invalid")
        raise RequestValidationError(problems) from None


def dossier_key(subscriber_id: str, dossier_id: str) -> str:
    """Return the bucket key of one dossier."""
    return dossier_file_key(subscriber_id, dossier_id)


def create_dossier(
    deps: ReportDeps,
    subscriber_id: str,
    request: DossierRequest,
    *,
    locale: Locale | None = None,
    staff: StaffRequester | None = None,
) -> dict[str, Any]:
    """Render, store and record a dossier; return its id, reference and a download URL.

    `locale` replaces the subscriber's own language. With `staff`, the `DOSSIER#` item and a
    `subscriber.dossier` audit record are written in one transaction before the URL is
    returned. Raises NotFoundError without an account and RequestValidationError naming
    `breach_names` when one of them is not a confirmed exposure of the account.
    """
    from idsentry.reports.dossier import dossier_document, reference
    from idsentry.reports.pdf import render_pdf

    pk = f"SUB#{subscriber_id}"
    items = deps.table.get_partition(pk)
    profile = items.get("PROFILE")
    if profile is None or profile.get("deletion_requested_at"):
        raise NotFoundError("account.not_found")

    generated_at = deps.clock().astimezone(UTC).replace(microsecond=0)
    facts = subscriber_facts(deps, subscriber_id, items)
    if locale is not None:
        facts = facts.model_copy(update={"locale": locale})
    names = tuple(request.breach_names) if request.breach_names else None
    data = DossierData(
        facts=facts, generated_at=generated_at, audience=request.audience, breach_names=names
    )
    try:
        document = dossier_document(data)
    except ReportDataError:
        raise RequestValidationError(
            [FieldProblem("breach_names", "dossier.breach_unknown")]
        ) from None

    dossier_reference = reference(data)
    dossier_id = "dos_" + hashlib.sha256(dossier_reference.encode()).hexdigest()[:26]
    key = dossier_key(subscriber_id, dossier_id)
    deps.objects.put(key, render_pdf(document), "application/pdf")
    item = {
        "pk": pk,
        "sk": f"{DOSSIER_PREFIX}{dossier_id}",
        "dossier_id": dossier_id,
        "reference": dossier_reference,
        "audience": request.audience,
        "breach_names": list(names or ()),
        "locale": facts.locale,
        "generated_at": generated_at.isoformat(),
    }
    if staff is None:
        deps.table.put(item)
    else:
        record = AuditRecord(
            action="subscriber.dossier",
            actor=staff.actor,
            request_id=staff.request_id,
            subject=f"SUBSCRIBER#{subscriber_id}",
            at=generated_at,
            breach_names=names or (),
            reason=staff.reason,
            outcome="created",
            object_id=dossier_id,
        )
        deps.table.transact([put_write("dossier", item), staff.trail.transaction_write(record)])
    logger.info(
        "dossier created",
        extra={
            "subscriber_id": subscriber_id,
            "dossier_id": dossier_id,
            "audience": request.audience,
            "requested_by": "subscriber" if staff is None else "staff",
        },
    )

    url = deps.objects.presigned_url(key, LINK_SECONDS, f"idsentry-dossier-{dossier_reference}.pdf")
    expires_at = generated_at + timedelta(seconds=LINK_SECONDS)
    return {
        "dossier_id": dossier_id,
        "reference": dossier_reference,
        "audience": request.audience,
        "locale": facts.locale,
        "url": url,
        "expires_at": expires_at.isoformat(),
    }
