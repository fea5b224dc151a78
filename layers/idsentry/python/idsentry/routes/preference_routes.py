"""The preference-link routes of the signup function: a page (GET) and the change itself (POST).

`POST /v1/preferences/{token}` with the form body `List-Unsubscribe=One-Click` is the one-click
unsubscribe of RFC 8058: it applies at once and needs no further input. The page's second
button posts `resubscribe=yes`. `GET` never changes anything, because mail scanners and link
previews fetch every link in a message.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from idsentry.clock import epoch, utc_now
from idsentry.errors import FieldProblem, RequestValidationError
from idsentry.http import HttpRequest
from idsentry.i18n import SUPPORTED_LOCALES, Locale, message
from idsentry.services import unsubscribe
from idsentry.services.unsubscribe import PreferenceState
from idsentry.settings import CoreSettings, load_settings
from idsentry.wiring import main_table, pepper_loader

GET_ROUTE = "GET /v1/preferences/{token}"
POST_ROUTE = "POST /v1/preferences/{token}"
ROUTE_KEYS = frozenset({GET_ROUTE, POST_ROUTE})

UNSUBSCRIBE_FIELD = "List-Unsubscribe"
UNSUBSCRIBE_VALUE = "One-Click"
RESUBSCRIBE_FIELD = "resubscribe"
RESUBSCRIBE_VALUE = "yes"


def handle(request: HttpRequest, locale: Locale) -> dict[str, Any]:
    """Serve one preference-link request; `locale` (from Accept-Language) orders an error page."""
    now = epoch(utc_now())
    pepper = pepper_loader(load_settings(CoreSettings))
    try:
        subscriber_id, action = unsubscribe.read_preference_link(
            pepper, request.path_parameters["token"], now
        )
    except unsubscribe.PreferenceLinkExpiredError:
        days = str(unsubscribe.LINK_VALID_SECONDS // 86400)
        return _page(
            410, locale, lambda each: [message("preferences.link_expired", each, {"days": days})]
        )
    except unsubscribe.PreferenceLinkInvalidError:
        return _page(400, locale, lambda each: [message("preferences.link_invalid", each)])

    if request.route_key == GET_ROUTE:
        state = unsubscribe.preference_state(main_table(), subscriber_id, action)
        return _state_page(state, after_change=False)

    subscribed = requested_choice(request)
    state = unsubscribe.set_preference(
        main_table(), subscriber_id, action, subscribed, "email_link", now
    )
    return _state_page(state, after_change=True)


def _form_fields(request: HttpRequest) -> dict[str, str]:
    """Return the fields of a form body, URL-encoded (the usual case) or multipart."""
    content_type = request.header("content-type") or ""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        # The stdlib e-mail parser and its header classes cost a cold start milliseconds that
        # the usual URL-encoded body never needs.
        from email import policy
        from email.parser import BytesParser

        header = f"Content-Type: {content_type}\r\n\r\n".encode()
        parsed = BytesParser(policy=policy.HTTP).parsebytes(header + request.body)
        fields: dict[str, str] = {}
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload.decode("utf-8", "replace").strip()
        return fields

    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def requested_choice(request: HttpRequest) -> bool:
    """Return the choice a POST requests: False to leave the list, True to rejoin it."""
    fields = _form_fields(request)
    if fields.get(UNSUBSCRIBE_FIELD) == UNSUBSCRIBE_VALUE:
        return False
    if fields.get(RESUBSCRIBE_FIELD) == RESUBSCRIBE_VALUE:
        return True
    raise RequestValidationError([FieldProblem(UNSUBSCRIBE_FIELD, "preferences.choice_missing")])


def _state_page(state: PreferenceState, *, after_change: bool) -> dict[str, Any]:
    """Describe the current state of the list, with the button that changes it."""
    if not state.account_exists:
        return _page(200, state.locale, lambda each: [message("preferences.account_closed", each)])

    list_code = f"preferences.list.{state.action.replace(':', '_')}"
    if state.subscribed:
        code = "preferences.resubscribed" if after_change else "preferences.confirm_stop"
        button = ("preferences.button_stop", UNSUBSCRIBE_FIELD, UNSUBSCRIBE_VALUE)
    else:
        code = "preferences.stopped" if after_change else "preferences.currently_stopped"
        button = ("preferences.button_resubscribe", RESUBSCRIBE_FIELD, RESUBSCRIBE_VALUE)

    def texts(locale: Locale) -> list[str]:
        return [message(code, locale, {"list": message(list_code, locale)})]

    return _page(200, state.locale, texts, button)


def _page(
    status: int,
    first: Locale,
    texts: Callable[[Locale], list[str]],
    button: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """Build a small page with its text in both languages, the `first` language on top.

    `button` is (label code, form field, value). The form posts to the page's own URL, so it
    works under any stage prefix or domain.
    """
    order = [first, *(locale for locale in SUPPORTED_LOCALES if locale != first)]
    sections = []
    for locale in order:
        paragraphs = "".join(f"<p>{html.escape(text)}</p>" for text in texts(locale))
        form = ""
        if button is not None:
            label_code, field, value = button
            form = (
                f'<form method="post"><input type="hidden" name="{field}" value="{value}">'
                f'<button type="submit">{html.escape(message(label_code, locale))}</button></form>'
            )
        heading = html.escape(message("preferences.title", locale))
        sections.append(f'<section lang="{locale}"><h2>{heading}</h2>{paragraphs}{form}</section>')

    title = "身份哨兵 IDSentry"
    body = (
        f'<!doctype html><html lang="{first}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1>"
        f"{''.join(sections)}</main></body></html>"
    )
    return {
        "statusCode": status,
        "headers": {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            # The token in the URL must not leave in a Referer header.
            "referrer-policy": "no-referrer",
            "x-robots-tag": "noindex",
        },
        "body": body,
        "isBase64Encoded": False,
    }
