"""What every email connector shares: one-click unsubscribe headers and body fallbacks."""
from __future__ import annotations

import html
import re

from ..errors import FatalError, SkipRecipient
from ..model import Message

_TAGS = re.compile(r"<[^>]+>")


def check_email(message: Message) -> None:
    """Marketing email needs a body and an HTTPS one-click unsubscribe link (RFC 8058)."""
    if not message.address or "@" not in message.address:
        raise SkipRecipient("no_email_address")
    if not (message.text or message.html):
        raise FatalError("empty_body")
    if not (message.unsubscribe_url or "").startswith("https://"):
        raise SkipRecipient("no_https_unsubscribe_url")


def unsubscribe_headers(message: Message) -> dict[str, str]:
    return {"List-Unsubscribe": f"<{message.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def text_body(message: Message) -> str:
    if message.text:
        return message.text
    return html.unescape(_TAGS.sub("", message.html or "")).strip()


def html_body(message: Message) -> str:
    if message.html:
        return message.html
    return "<br>\n".join(html.escape(line) for line in (message.text or "").splitlines())
