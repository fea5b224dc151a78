"""Passwordless sign-in: a one-time code by SMS to the account's verified mobile, then a JWT.

A request stores a sign-in (`SIGNIN#{id}` / `SIGNIN`) with the number's fingerprint and a
code item (`SIGNIN#{id}` / `OTP`) whose hash no code matches, counts the request against the
same limits as signup codes, and queues a `SignInCodeJob`. It does all of this whether or not
an account has the number, so neither the response nor the writes tell the two apart. The
notifier looks the account up, binds it to the sign-in, stores the hash of a fresh code and
sends the SMS, or sends nothing when no account holds the number. A code for a number without
an account therefore never verifies and burns attempts like any wrong code.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idsentry.adapters.queue import JobQueue
from idsentry.adapters.table import (
    ConditionFailedError,
    MainTable,
    TransactionConflictError,
    put_write,
    update_write,
)
from idsentry.clock import Clock, epoch
from idsentry.crypto import Fingerprint, Pepper
from idsentry.errors import (
    FieldProblem,
    NotFoundError,
    RequestValidationError,
    ServiceUnavailableError,
)
from idsentry.ids import new_id
from idsentry.index_keys import sign_in_index_key
from idsentry.item_keys import watch_pk
from idsentry.models.jobs import SignInCodeJob
from idsentry.services import code_requests, otp, phone_reconfirm, tokens
from idsentry.settings.codes import SignInSettings

logger = logging.getLogger(__name__)

SIGN_IN_SK = "SIGNIN"
CODE_SK = "OTP"
# A sign-in outlives its code by this much, so a late verify reads "expired", not "not found".
SIGN_IN_TTL_SECONDS = 3 * otp.VALID_SECONDS
# An account item per sign-in code names its delivery record, and lives as long as the record.
SIGN_IN_MESSAGE_PREFIX = "SIGNINMSG#"
MESSAGE_POINTER_TTL_SECONDS = 90 * 24 * 3600
# BatchGetItem reads at most 100 keys, and each candidate needs two.
_CANDIDATES_PER_READ = 50


@dataclass
class SignInDeps:
    """Everything sign-in talks to, injected so tests can swap any of it."""

    settings: SignInSettings
    table: MainTable
    pepper: Callable[[], Pepper]
    queue: JobQueue
    signer: Callable[[], tokens.TokenSigner]
    clock: Clock
    on_otp_budget_exhausted: Callable[[], None]


@dataclass(frozen=True)
class SignInCode:
    """A code the notifier is to send: the account it signs in to and the code itself."""

    subscriber_id: str
    code: str


def sign_in_pk(sign_in_id: str) -> str:
    """Return the partition key of a sign-in's items."""
    return f"SIGNIN#{sign_in_id}"


def create_sign_in(deps: SignInDeps, mobile: str, source_ip: str) -> dict[str, Any]:
    """Count the request against the code limits, store the sign-in and queue its code job.

    `mobile` is canonical. The result is the same whether or not an account has the number.
    """
    settings = deps.settings
    pepper = deps.pepper()
    moment = deps.clock()
    now = epoch(moment)

    mobile_fp = pepper.fingerprint("mobile", mobile)
    counting_writes = code_requests.count_code_request(
        deps.table,
        settings,
        pepper,
        mobile_fp.value,
        source_ip,
        moment,
        deps.on_otp_budget_exhausted,
    )

    sign_in_id = new_id("sin")
    code_id = new_id("code")
    pk = sign_in_pk(sign_in_id)
    sign_in_item = {
        "pk": pk,
        "sk": SIGN_IN_SK,
        "sign_in_id": sign_in_id,
        "code_id": code_id,
        "status": "pending",
        "mobile_fp": str(mobile_fp),
        "created_at": now,
        "expires_at": now + SIGN_IN_TTL_SECONDS,
    }
    # Random hex that no HMAC of a code equals, until the notifier stores the sent code's hash.
    placeholder_code = {
        "pk": pk,
        "sk": CODE_SK,
        "code_id": code_id,
        "code_hash": secrets.token_hex(32),
        "created_at": now,
        "expires_at": now + otp.VALID_SECONDS,
        "attempts": 0,
        "used": False,
    }
    try:
        deps.table.transact(
            [
                *counting_writes,
                put_write("sign_in", sign_in_item, condition="attribute_not_exists(pk)"),
                put_write("code", placeholder_code, condition="attribute_not_exists(pk)"),
            ]
        )
    except ConditionFailedError as exc:
        code_requests.raise_limit_error(exc, settings, moment, deps.on_otp_budget_exhausted)
    except TransactionConflictError as exc:
        raise ServiceUnavailableError("sign_in.retry", 1) from exc

    deps.queue.send(SignInCodeJob(job_id=f"job_{code_id}", sign_in_id=sign_in_id, code_id=code_id))
    logger.info("sign-in created", extra={"sign_in_id": sign_in_id})
    return {
        "sign_in_id": sign_in_id,
        "status": "code_sent",
        "code_expires_in": otp.VALID_SECONDS,
        "verify": {"method": "POST", "path": f"/v1/sign-in/{sign_in_id}/verify"},
    }


def _parse_fingerprint(stored: str) -> Fingerprint:
    version, _, value = stored.partition(":")
    return Fingerprint(version=version, value=value)


def account_holder(table: MainTable, mobile_fingerprint: Fingerprint) -> str | None:
    """Return the account that has the number now, or None.

    Several accounts can list one number: Chinese numbers are reassigned to new owners, and a
    person who signed up again keeps the older account. The account that verified the number
    last is its current holder, so it gets the code. Accounts whose profile is gone (deleted)
    are skipped.
    """
    watch = table.get(watch_pk("mobile", mobile_fingerprint), "WATCH") or {}
    candidates = sorted(str(subscriber_id) for subscriber_id in watch.get("subscriber_ids") or ())

    best: tuple[int, str] | None = None
    for start in range(0, len(candidates), _CANDIDATES_PER_READ):
        chunk = candidates[start : start + _CANDIDATES_PER_READ]
        keys = [(f"SUB#{sid}", sk) for sid in chunk for sk in ("PROFILE", "IDENT#mobile")]
        found = table.get_many(keys)
        for subscriber_id in chunk:
            profile = found.get((f"SUB#{subscriber_id}", "PROFILE"))
            mobile = found.get((f"SUB#{subscriber_id}", "IDENT#mobile")) or {}
            stored = (mobile.get("fingerprints") or {}).get(mobile_fingerprint.version)
            if profile is None or stored != mobile_fingerprint.value:
                # The account is gone, or has changed its number since the watch was written.
                continue
            ranked = (int(mobile.get("added_at", 0)), subscriber_id)
            if best is None or ranked > best:
                best = ranked
    return best[1] if best else None


def prepare_code(
    table: MainTable, pepper: Pepper, job: SignInCodeJob, now: int
) -> SignInCode | None:
    """Bind the sign-in to the number's account and store a fresh code's hash, for the notifier.

    Returns None, and writes nothing, when the sign-in is gone, closed or replaced, or when no
    account has its number. A redelivered job stores a new hash, so only the code in the
    SMS that follows verifies. The attempts already counted stay.
    """
    sign_in = table.get(sign_in_pk(job.sign_in_id), SIGN_IN_SK)
    if (
        sign_in is None
        or sign_in.get("status") != "pending"
        or sign_in.get("code_id") != job.code_id
        or now >= int(sign_in["expires_at"])
    ):
        return None
    subscriber_id = account_holder(table, _parse_fingerprint(str(sign_in["mobile_fp"])))
    if subscriber_id is None:
        logger.info("sign-in number has no account", extra={"sign_in_id": job.sign_in_id})
        return None

    code = otp.generate_code()
    code_hash = otp.hash_code(pepper.derive_key("otp"), job.sign_in_id, job.code_id, code)
    pk = sign_in_pk(job.sign_in_id)
    try:
        table.transact(
            [
                update_write(
                    "sign_in",
                    pk,
                    SIGN_IN_SK,
                    # The index entry lets account deletion find the sign-ins of the account.
                    "SET subscriber_id = :subscriber_id, gsi1pk = :index_key, gsi1sk = :sign_in",
                    values={
                        ":subscriber_id": subscriber_id,
                        ":index_key": sign_in_index_key(subscriber_id),
                        ":sign_in": job.sign_in_id,
                        ":pending": "pending",
                        ":code_id": job.code_id,
                    },
                    condition="#status = :pending AND code_id = :code_id AND "
                    "(attribute_not_exists(subscriber_id) OR subscriber_id = :subscriber_id)",
                    names={"#status": "status"},
                ),
                update_write(
                    "code",
                    pk,
                    CODE_SK,
                    "SET code_hash = :hash, created_at = :now, expires_at = :expires",
                    values={
                        ":hash": code_hash,
                        ":now": now,
                        ":expires": now + otp.VALID_SECONDS,
                        ":code_id": job.code_id,
                        ":false": False,
                    },
                    condition="code_id = :code_id AND used = :false",
                ),
                # Names the code's delivery record in the account, for its export and deletion.
                put_write(
                    "message",
                    {
                        "pk": f"SUB#{subscriber_id}",
                        "sk": f"{SIGN_IN_MESSAGE_PREFIX}{job.code_id}",
                        "message_key": f"code:{job.code_id}",
                        "created_at": now,
                        "expires_at": now + MESSAGE_POINTER_TTL_SECONDS,
                    },
                ),
            ]
        )
    except ConditionFailedError:
        logger.info("sign-in closed before its code was sent", extra={"sign_in_id": job.sign_in_id})
        return None
    return SignInCode(subscriber_id=subscriber_id, code=code)


def _load_pending(
    deps: SignInDeps, sign_in_id: str, now: int
) -> tuple[dict[str, Any], otp.CodeRecord]:
    items = deps.table.get_partition(sign_in_pk(sign_in_id))
    sign_in = items.get(SIGN_IN_SK)
    code_item = items.get(CODE_SK)
    if sign_in is None or code_item is None or now >= int(sign_in["expires_at"]):
        raise NotFoundError("sign_in.not_found")
    return sign_in, code_requests.code_record(code_item)


def _reject_code(
    deps: SignInDeps, sign_in_id: str, record: otp.CodeRecord
) -> RequestValidationError:
    left = code_requests.burn_attempt(deps.table, sign_in_pk(sign_in_id), record)
    code = "code.incorrect" if left else "code.locked"
    return RequestValidationError([FieldProblem("code", code, {"attempts_left": str(left)})])


def verify_sign_in(deps: SignInDeps, sign_in_id: str, code: str) -> dict[str, Any]:
    """Check the code and return an access token for the account it was sent to.

    A code verifies once: a repeated request gets `code.used`, so a lost response means
    requesting a new code. The token is signed before the code is marked used, so a KMS
    failure leaves the code valid for a retry.
    """
    pepper = deps.pepper()
    now = epoch(deps.clock())
    sign_in, record = _load_pending(deps, sign_in_id, now)

    outcome = otp.check_code(record, pepper.derive_key("otp"), sign_in_id, code, now)
    if outcome is otp.CodeCheck.INCORRECT:
        raise _reject_code(deps, sign_in_id, record)
    if outcome is not otp.CodeCheck.ACCEPTED:
        raise RequestValidationError([FieldProblem("code", f"code.{outcome.value}")])

    subscriber_id = sign_in.get("subscriber_id")
    if not subscriber_id:
        # Cannot happen: the notifier stores a matching hash only together with the account.
        raise _reject_code(deps, sign_in_id, record)
    if deps.table.get(f"SUB#{subscriber_id}", "PROFILE") is None:
        # The account was deleted after the code was sent.
        raise NotFoundError("sign_in.not_found")
    # The accepted code went to the account's number, which proves the number again.
    phone_reconfirm.confirm_mobile(deps.table, str(subscriber_id), now)

    settings = deps.settings
    issued = tokens.issue_access_token(
        deps.signer(),
        settings.public_base_url,
        str(subscriber_id),
        now,
        settings.access_token_seconds,
    )
    _close(deps, sign_in_id, record, now)
    logger.info(
        "signed in",
        extra={
            "sign_in_id": sign_in_id,
            "subscriber_id": subscriber_id,
            "token_id": issued.token_id,
        },
    )
    return {
        "access_token": issued.access_token,
        "token_type": tokens.TOKEN_TYPE,
        "expires_in": issued.expires_in,
    }


def _close(deps: SignInDeps, sign_in_id: str, record: otp.CodeRecord, now: int) -> None:
    """Mark the code used and the sign-in verified in one transaction."""
    pk = sign_in_pk(sign_in_id)
    try:
        deps.table.transact(
            [
                update_write(
                    "code",
                    pk,
                    CODE_SK,
                    "SET used = :true",
                    values={
                        ":true": True,
                        ":false": False,
                        ":code_id": record.code_id,
                        ":max": otp.MAX_ATTEMPTS,
                    },
                    condition="used = :false AND code_id = :code_id AND "
                    "(attribute_not_exists(attempts) OR attempts < :max)",
                ),
                update_write(
                    "sign_in",
                    pk,
                    SIGN_IN_SK,
                    "SET #status = :verified, verified_at = :now",
                    values={":verified": "verified", ":pending": "pending", ":now": now},
                    condition="#status = :pending",
                    names={"#status": "status"},
                ),
            ]
        )
    except ConditionFailedError as exc:
        # A concurrent request with the same code, or the last wrong attempt, came first.
        raise RequestValidationError([FieldProblem("code", "code.used")]) from exc
    except TransactionConflictError as exc:
        raise ServiceUnavailableError("sign_in.retry", 1) from exc
