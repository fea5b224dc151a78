"""The sign-in request, validated into the canonical mobile number or a list of problems."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from idsentry import identifiers
from idsentry.errors import FieldProblem, RequestValidationError, pydantic_problems


class SignInBody(BaseModel):
    """The JSON body of POST /v1/sign-in: the mobile number the account was verified with."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    mobile: str = Field(max_length=64)


def parse_sign_in(payload: dict[str, Any], *, allowed_regions: tuple[str, ...]) -> str:
    """Return the canonical (E.164) mobile number of a sign-in body.

    Raises RequestValidationError naming each invalid field. A valid number does not mean
    that an account has it.
    """
    try:
        body = SignInBody.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(pydantic_problems(exc)) from None

    try:
        return identifiers.canonical_mobile(body.mobile, allowed_regions=allowed_regions)
    except identifiers.IdentifierError as exc:
        raise RequestValidationError(
            [FieldProblem(exc.field, exc.code, dict(exc.params))]
        ) from None
