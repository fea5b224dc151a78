"""Signup: validate, apply abuse limits, store the pending signup, verify the code and owner."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idsentry import identifiers
from idsentry.adapters.bus import EventPublisher
from idsentry.adapters.human_check import HumanCheck
from idsentry.adapters.keys import DataKeyStore
from idsentry.adapters.queue import JobQueue
from idsentry.adapters.realname import IdentityVerifier, OwnershipResult
from idsentry.adapters.table import (
    ConditionFailedError,
    MainTable,
    TransactionConflictError,
    Write,
    delete_write,
    put_write,
    update_write,
)
from idsentry.clock import Clock, epoch
from idsentry.crypto import Pepper, decrypt_field, encrypt_field
from idsentry.errors import (
    ConflictError,
    DomainError,
    FieldProblem,
    NotFoundError,
    ProviderError,
    RequestValidationError,
    ServiceUnavailableError,
)
from idsentry.ids import new_id
from idsentry.models.events import EventDetail, IdentifierReassigned, SubscriberRegistered
from idsentry.models.jobs import EmailConfirmationJob, IdentifierReassignedJob, OtpJob
from idsentry.models.signup import ValidSignup
from idsentry.services import code_requests, otp, referrals
from idsentry.services.exposures import watch_writes
from idsentry.services.preferences import DEFAULT_TIMEZONE, PREFS_SK
from idsentry.settings.codes import SignupSettings

logger = logging.getLogger(__name__)

SIGNUP_TTL_SECONDS = 24 * 3600
KEY_TTL_SECONDS = 2 * 24 * 3600
OWNED_KINDS = ("id_number", "mobile", "email")


class HumanCheckFailedError(DomainError):
    """The human-check provider did not accept the request's token."""

    status = 403

    def __init__(self) -> None:
        super().__init__("human_check.failed")


class _CodeSpentError(Exception):
    """The verify transaction found the code used, replaced or locked by then."""


class IdentityVerificationFailedError(DomainError):
    """The provider did not confirm that name, ID number and mobile belong to one person."""

    status = 422

    def __init__(self) -> None:
        super().__init__("identity.verification_failed")


@dataclass
class SignupDeps:
    """Everything the signup service talks to, injected so tests can swap any of it."""

    settings: SignupSettings
    table: MainTable
    keys: DataKeyStore
    pepper: Callable[[], Pepper]
    verifier: Callable[[], IdentityVerifier]
    publisher: EventPublisher
    queue: JobQueue
    clock: Clock
    on_otp_budget_exhausted: Callable[[], None]
    # None when the deployment's HumanCheckProvider is "none" (the default).
    human_check: HumanCheck | None = None
    # Returns the Checkout URL for (subscriber_id, signup_id, plan, locale); None when the
    # deployment has no billing configured.
    checkout: Callable[[str, str, str, str], str] | None = None


def signup_pk(signup_id: str) -> str:
    """Return the partition key of a signup's items."""
    return f"SIGNUP#{signup_id}"


def subscriber_pk(subscriber_id: str) -> str:
    """Return the partition key of a subscriber's items."""
    return f"SUB#{subscriber_id}"


def claim_pk(kind: str, version: str, fingerprint: str) -> str:
    """Return the key of the item that records which subscriber has claimed an identifier."""
    return f"CLAIM#{kind}#{version}#{fingerprint}"


def create_signup(
    deps: SignupDeps, request: ValidSignup, source_ip: str, locale: str
) -> dict[str, Any]:
    """Apply the abuse limits, store an encrypted pending signup and queue its code SMS."""
    settings = deps.settings
    if deps.human_check is not None and not deps.human_check.verify(
        request.human_check_token, source_ip
    ):
        raise HumanCheckFailedError()

    pepper = deps.pepper()
    moment = deps.clock()
    now = epoch(moment)

    mobile_fp = pepper.fingerprint("mobile", request.mobile)
    referral_code = None
    if request.referral_code is not None:
        referrals.find_referrer(
            deps.table,
            request.referral_code,
            pepper.fingerprints("id_number", request.id_number),
            pepper.fingerprints("mobile", request.mobile),
        )
        referral_code = referrals.normalize_code(request.referral_code)
    counting_writes = code_requests.count_code_request(
        deps.table,
        settings,
        pepper,
        mobile_fp.value,
        source_ip,
        moment,
        deps.on_otp_budget_exhausted,
    )

    signup_id = new_id("sgn")
    code_id = new_id("code")
    data_key, key_write = deps.keys.prepare(signup_id, expires_at=now + KEY_TTL_SECONDS)
    consents = {
        kind: {"version": version, "accepted_at": moment.isoformat()}
        for kind, version in request.consent_versions.items()
    }
    signup_item = {
        "pk": signup_pk(signup_id),
        "sk": "SIGNUP",
        "status": "pending",
        "signup_id": signup_id,
        "code_id": code_id,
        "locale": locale,
        "timezone": request.timezone,
        "plan": request.plan,
        "referral_code": referral_code,
        "consents": consents,
        "name_enc": encrypt_field(data_key, signup_id, request.name),
        "id_number_enc": encrypt_field(data_key, signup_id, request.id_number),
        "mobile_enc": encrypt_field(data_key, signup_id, request.mobile),
        "email_enc": encrypt_field(data_key, signup_id, request.email),
        "mobile_fp": str(mobile_fp),
        "created_at": now,
        "expires_at": now + SIGNUP_TTL_SECONDS,
    }
    writes = [
        *counting_writes,
        put_write("signup", signup_item, condition="attribute_not_exists(pk)"),
        key_write,
    ]
    try:
        deps.table.transact(writes)
    except ConditionFailedError as exc:
        deps.keys.forget(signup_id)
        code_requests.raise_limit_error(exc, settings, moment, deps.on_otp_budget_exhausted)
    except TransactionConflictError as exc:
        deps.keys.forget(signup_id)
        raise ServiceUnavailableError("signup.retry", 1) from exc

    # NOTE: when this send fails after the transaction committed (SQS still failing after the
    # client's retries, or the function timing out here), the caller gets a 500 and the pending
    # signup keeps its counters without a code job. The number then waits out the resend interval.
    deps.queue.send(OtpJob(job_id=f"job_{code_id}", signup_id=signup_id, code_id=code_id))
    logger.info("signup created", extra={"signup_id": signup_id})
    return {
        "signup_id": signup_id,
        "status": "code_sent",
        "code_expires_in": otp.VALID_SECONDS,
        # Seconds until the same number may request another code. The signup page waits this long.
        "resend_after": settings.otp_resend_interval_seconds,
        "verify": {"method": "POST", "path": f"/v1/signups/{signup_id}/verify"},
    }


def _load_pending(
    deps: SignupDeps, signup_id: str, now: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return the signup and its code item (None before the notifier stored a code)."""
    items = deps.table.get_partition(signup_pk(signup_id))
    signup = items.get("SIGNUP")
    if signup is None:
        raise NotFoundError("signup.not_found")
    if signup["status"] == "pending" and now >= signup["expires_at"]:
        raise NotFoundError("signup.not_found")
    return signup, items.get("OTP")


def _verified_response(deps: SignupDeps, signup: dict[str, Any]) -> dict[str, Any]:
    next_step: dict[str, Any] = {"type": "payment", "available": False}
    if deps.checkout is not None:
        try:
            url = deps.checkout(
                signup["subscriber_id"], signup["signup_id"], signup["plan"], signup["locale"]
            )
        except ProviderError as exc:
            if exc.transient:
                # The subscriber exists; retrying with the same code returns the same session.
                raise ServiceUnavailableError("payment.retry", 5) from exc
            raise
        next_step = {"type": "payment", "available": True, "checkout_url": url}
    return {
        "signup_id": signup["signup_id"],
        "subscriber_id": signup["subscriber_id"],
        "status": "pending_payment",
        "next_step": next_step,
        "email_confirmation": "sent",
        "locale": signup["locale"],
        "referral_code": signup.get("own_referral_code"),
    }


def verify_signup(deps: SignupDeps, signup_id: str, code: str) -> dict[str, Any]:
    """Check the code and the owner, then create the subscriber and claim the ID in one transaction."""
    pepper = deps.pepper()
    now = epoch(deps.clock())
    signup, code_item = _load_pending(deps, signup_id, now)
    if code_item is None:
        raise ConflictError("code.not_sent")
    record = code_requests.code_record(code_item)
    code_key = pepper.derive_key("otp")

    if signup["status"] == "verified":
        # A retry of a verification that succeeded: the same code gets the same response, and
        # events or jobs that a crash left unsent are sent now.
        if not hmac.compare_digest(
            otp.hash_code(code_key, signup_id, record.code_id, code), record.code_hash
        ):
            raise NotFoundError("signup.not_found")
        if not signup.get("published"):
            _announce(deps, signup, signup.get("reassigned_from"))
        return _verified_response(deps, signup)

    outcome = otp.check_code(record, code_key, signup_id, code, now)
    if outcome is otp.CodeCheck.INCORRECT:
        left = code_requests.burn_attempt(deps.table, signup_pk(signup_id), record)
        problem_code = "code.incorrect" if left else "code.locked"
        raise RequestValidationError(
            [FieldProblem("code", problem_code, {"attempts_left": str(left)})]
        )
    if outcome is not otp.CodeCheck.ACCEPTED:
        raise RequestValidationError([FieldProblem("code", f"code.{outcome.value}")])

    signup_key = deps.keys.get(signup_id)
    plain = {
        field: decrypt_field(signup_key, signup_id, signup[f"{field}_enc"], purpose="signup")
        for field in ("name", *OWNED_KINDS)
    }

    try:
        verdict = deps.verifier().verify(plain["name"], plain["id_number"], plain["mobile"])
    except ProviderError as exc:
        if exc.transient:
            raise ServiceUnavailableError("identity.provider_unavailable", 30) from exc
        raise
    if verdict is not OwnershipResult.MATCH:
        # Each failed ownership check costs an attempt, so the code cannot be used to probe
        # the provider with other people's identities.
        code_requests.burn_attempt(deps.table, signup_pk(signup_id), record)
        logger.info("ownership check failed", extra={"signup_id": signup_id})
        raise IdentityVerificationFailedError()

    subscriber_id = new_id("sbr")
    own_code = referrals.new_code()
    try:
        holder = _commit_subscriber(
            deps, pepper, signup, record, subscriber_id, own_code, plain, now
        )
    except _CodeSpentError as exc:
        deps.keys.forget(subscriber_id)
        verified = _verified_with_code(deps, signup_id, record.code_id)
        if verified is None:
            raise RequestValidationError([FieldProblem("code", "code.locked")]) from exc
        # A concurrent request with this code committed first, for example a double-tapped
        # submit. It gets the same response as a retry, and the request that committed
        # publishes the events.
        logger.info("signup verified by a concurrent request", extra={"signup_id": signup_id})
        return _verified_response(deps, verified)
    except BaseException:
        deps.keys.forget(subscriber_id)
        raise

    deps.keys.forget(signup_id)
    signup = {
        **signup,
        "status": "verified",
        "subscriber_id": subscriber_id,
        "reassigned_from": holder,
        "own_referral_code": own_code,
    }
    _announce(deps, signup, holder)
    logger.info("signup verified", extra={"signup_id": signup_id, "subscriber_id": subscriber_id})
    return _verified_response(deps, signup)


def _verified_with_code(deps: SignupDeps, signup_id: str, code_id: str) -> dict[str, Any] | None:
    """Return the signup when it is verified and its code `code_id` is the one used, else None."""
    items = deps.table.get_partition(signup_pk(signup_id))
    signup = items.get("SIGNUP")
    code_item = items.get("OTP")
    if signup is None or signup["status"] != "verified" or code_item is None:
        return None
    if code_item["code_id"] != code_id or not code_item.get("used"):
        return None
    return signup


def _commit_subscriber(
    deps: SignupDeps,
    pepper: Pepper,
    signup: dict[str, Any],
    record: otp.CodeRecord,
    subscriber_id: str,
    own_code: str,
    plain: dict[str, str],
    now: int,
) -> str | None:
    """Write the subscriber, its data key, identifiers, ID claim and referral code in one transaction.

    The same transaction deletes the signup's data key, whose ciphertext it removes.

    Returns the id of the account that lost the ID number to this verified owner, if any.
    Raises _CodeSpentError when the code was used, replaced or locked before the commit.
    """
    signup_id = signup["signup_id"]
    id_fps = pepper.fingerprints("id_number", plain["id_number"])
    claims = deps.table.get_many(
        [(claim_pk("id_number", fp.version, fp.value), "CLAIM") for fp in id_fps]
    )
    holders = {item["subscriber_id"] for item in claims.values()}
    holder = next(iter(holders), None)
    referrer = _referrer_at_verification(deps, pepper, signup, plain)
    data_key, key_write = deps.keys.prepare(subscriber_id)

    writes: list[Write] = [
        key_write,
        deps.keys.delete_write(signup_id),
        update_write(
            "code",
            signup_pk(signup_id),
            "OTP",
            "SET used = :true",
            values={
                ":true": True,
                ":false": False,
                ":code_id": record.code_id,
                ":max": otp.MAX_ATTEMPTS,
            },
            condition="used = :false AND code_id = :code_id AND (attribute_not_exists(attempts) OR attempts < :max)",
        ),
        update_write(
            "signup",
            signup_pk(signup_id),
            "SIGNUP",
            "SET #status = :verified, subscriber_id = :subscriber_id, verified_at = :now, "
            "reassigned_from = :holder, own_referral_code = :own_code "
            "REMOVE name_enc, id_number_enc, mobile_enc, email_enc",
            values={
                ":verified": "verified",
                ":pending": "pending",
                ":subscriber_id": subscriber_id,
                ":now": now,
                ":holder": holder or "",
                ":own_code": own_code,
            },
            condition="#status = :pending",
            names={"#status": "status"},
        ),
        put_write(
            "subscriber",
            {
                "pk": subscriber_pk(subscriber_id),
                "sk": "PROFILE",
                "subscriber_id": subscriber_id,
                "status": "pending_payment",
                "plan": signup["plan"],
                "locale": signup["locale"],
                "signup_id": signup_id,
                "own_referral_code": own_code,
                "referred_by": referrer,
                "consents": signup["consents"],
                "name_enc": encrypt_field(data_key, subscriber_id, plain["name"]),
                "mobile_enc": encrypt_field(data_key, subscriber_id, plain["mobile"]),
                "email_enc": encrypt_field(data_key, subscriber_id, plain["email"]),
                "email_fp": str(pepper.fingerprint("email", plain["email"])),
                "created_at": now,
                # The code just verified proves the number; reconfirmation counts from here.
                "mobile_confirmed_at": now,
            },
            condition="attribute_not_exists(pk)",
        ),
    ]
    writes.append(referrals.code_write(own_code, subscriber_id, now))
    writes.append(
        put_write(
            "preferences",
            {
                "pk": subscriber_pk(subscriber_id),
                "sk": PREFS_SK,
                "timezone": signup.get("timezone") or DEFAULT_TIMEZONE,
                "created_at": now,
            },
            condition="attribute_not_exists(pk)",
        )
    )
    # The verified ID number and mobile are watched from now on; the e-mail once confirmed.
    writes.extend(watch_writes("id_number", id_fps, subscriber_id, sole=True))
    writes.extend(
        watch_writes(
            "mobile", pepper.fingerprints("mobile", plain["mobile"]), subscriber_id, sole=False
        )
    )
    if referrer is not None:
        writes.append(
            referrals.referral_write(subscriber_id, referrer, signup["referral_code"], now)
        )
    for kind in OWNED_KINDS:
        canonical = plain[kind]
        writes.append(
            put_write(
                f"identifier:{kind}",
                {
                    "pk": subscriber_pk(subscriber_id),
                    "sk": f"IDENT#{kind}",
                    "kind": kind,
                    "fingerprints": {
                        fp.version: fp.value for fp in pepper.fingerprints(kind, canonical)
                    },
                    "value_enc": encrypt_field(data_key, subscriber_id, canonical),
                    "masked": identifiers.mask(identifiers.IdentifierKind(kind), canonical),
                    "confirmed": kind != "email",
                    "added_at": now,
                },
            )
        )
    for fp in id_fps:
        item = {
            "pk": claim_pk("id_number", fp.version, fp.value),
            "sk": "CLAIM",
            "subscriber_id": subscriber_id,
            "claimed_at": now,
        }
        if holder is None:
            writes.append(
                put_write(f"claim:{fp.version}", item, condition="attribute_not_exists(pk)")
            )
        else:
            writes.append(
                put_write(
                    f"claim:{fp.version}",
                    item,
                    condition="attribute_not_exists(pk) OR subscriber_id = :holder",
                    values={":holder": holder},
                )
            )
    if holder is not None:
        writes.append(delete_write("holder_identifier", subscriber_pk(holder), "IDENT#id_number"))
        writes.append(
            put_write(
                "holder_removed",
                {
                    "pk": subscriber_pk(holder),
                    "sk": "IDENT_REMOVED#id_number",
                    "masked": identifiers.mask(
                        identifiers.IdentifierKind.ID_NUMBER, plain["id_number"]
                    ),
                    "removed_at": now,
                    "taken_by": subscriber_id,
                },
            )
        )
        writes.append(
            update_write(
                "holder_profile",
                subscriber_pk(holder),
                "PROFILE",
                "SET notices = list_append(if_not_exists(notices, :empty), :notice)",
                values={
                    ":empty": [],
                    ":notice": [
                        {"kind": "identifier_reassigned", "identifier_kind": "id_number", "at": now}
                    ],
                },
                condition="attribute_exists(pk)",
            )
        )

    try:
        deps.table.transact(writes)
    except ConditionFailedError as exc:
        if exc.name == "code":
            raise _CodeSpentError() from exc
        # Another verification of this signup or of the same ID number committed first.
        raise ServiceUnavailableError("signup.retry", 1) from exc
    except TransactionConflictError as exc:
        raise ServiceUnavailableError("signup.retry", 1) from exc
    return holder


def _referrer_at_verification(
    deps: SignupDeps, pepper: Pepper, signup: dict[str, Any], plain: dict[str, str]
) -> str | None:
    """Check the signup's referral code again; a code that stopped qualifying is dropped."""
    code = signup.get("referral_code")
    if not code:
        return None
    try:
        return referrals.find_referrer(
            deps.table,
            code,
            pepper.fingerprints("id_number", plain["id_number"]),
            pepper.fingerprints("mobile", plain["mobile"]),
        )
    except RequestValidationError:
        # The referrer stopped paying, or took over this ID number, since the signup.
        logger.info("referral dropped at verification", extra={"signup_id": signup["signup_id"]})
        return None


def _announce(deps: SignupDeps, signup: dict[str, Any], holder: str | None) -> None:
    """Publish the events and queue the jobs of a verified signup; safe to repeat."""
    signup_id = signup["signup_id"]
    subscriber_id = signup["subscriber_id"]
    events: list[EventDetail] = [
        SubscriberRegistered(
            event_id=f"evt_registered_{signup_id}",
            subscriber_id=subscriber_id,
            signup_id=signup_id,
            plan=signup["plan"],
            locale=signup["locale"],
            referral_code=signup.get("referral_code"),
        )
    ]
    jobs: list[Any] = [
        EmailConfirmationJob(job_id=f"job_emailconf_{subscriber_id}", subscriber_id=subscriber_id)
    ]
    if holder:
        events.append(
            IdentifierReassigned(
                event_id=f"evt_reassigned_{signup_id}",
                kind="id_number",
                from_subscriber_id=holder,
                to_subscriber_id=subscriber_id,
            )
        )
        jobs.append(
            IdentifierReassignedJob(
                job_id=f"job_reassigned_{signup_id}",
                subscriber_id=holder,
                identifier_kind="id_number",
            )
        )

    deps.publisher.publish(events)
    deps.queue.send_many(jobs)
    deps.table.update(
        signup_pk(signup_id), "SIGNUP", "SET published = :true", values={":true": True}
    )
