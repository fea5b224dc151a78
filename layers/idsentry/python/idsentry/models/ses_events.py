"""SES sending events as EventBridge delivers them (source `aws.ses`), reduced to what we use.

SES publishes these to the default event bus from a configuration set's EventBridge event
destination. The `detail` is SES's event publishing record (`eventType`, `mail`, and a
`bounce` or `complaint` object). SES may add fields at any time, so unknown fields are
ignored. These events are SES's own format and carry recipient addresses; nothing of ours
copies them onward.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

SES_SOURCE = "aws.ses"
BOUNCE_DETAIL_TYPE = "Email Bounced"
COMPLAINT_DETAIL_TYPE = "Email Complaint Received"
# A complaint with this feedback type means the recipient marked the message as not spam.
NOT_SPAM_FEEDBACK = "not-spam"


class _SesModel(BaseModel):
    model_config = ConfigDict(
        defer_build=True,
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        populate_by_name=True,
    )


class SesRecipient(_SesModel):
    """One recipient that a bounce or complaint names."""

    email_address: str


class SesBounce(_SesModel):
    """SES's `bounce` object: Permanent bounces never succeed on a retry, Transient ones may."""

    bounce_type: str
    bounce_sub_type: str = ""
    bounced_recipients: list[SesRecipient]
    feedback_id: str = ""


class SesComplaint(_SesModel):
    """SES's `complaint` object; the feedback type is absent when the mailbox provider gives none."""

    complained_recipients: list[SesRecipient]
    complaint_feedback_type: str | None = None
    feedback_id: str = ""


class SesMail(_SesModel):
    """SES's `mail` object: the message the event is about."""

    message_id: str = Field(min_length=1)
    timestamp: str = ""


class SesEventDetail(_SesModel):
    """The event publishing record: the event type and its object."""

    event_type: Literal["Bounce", "Complaint"]
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesComplaint | None = None

    @model_validator(mode="after")
    def _object_of_type(self) -> Self:
        if self.event_type == "Bounce" and self.bounce is None:
            raise ValueError("a Bounce event needs its bounce object")
        if self.event_type == "Complaint" and self.complaint is None:
            raise ValueError("a Complaint event needs its complaint object")
        return self


class SesEvent(BaseModel):
    """An EventBridge event from SES, as the SQS queue behind the rule receives it whole."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore", populate_by_name=True)

    id: str
    source: Literal["aws.ses"]
    detail_type: Literal["Email Bounced", "Email Complaint Received"] = Field(alias="detail-type")
    time: str
    detail: SesEventDetail
