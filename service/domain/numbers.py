"""Phone numbers in one national form, so that CCC's numbers and the page's numbers compare equal.

CCC writes a Chinese number with its country code in the ``0086`` form (``008613012345678``), the pop-up
page sees what the agent's softphone shows (``13012345678``, ``+86 130 1234 5678``). ``normalise_number``
maps them all to the national form; call records (the customer's number) and the PII protection of call
records and of the page's events (a number is normalised before it is protected) use it, so the two sides
give one token (docs/call-records.md).
Pure: no I/O.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-]+")
_DIGITS = re.compile(r"\+?[0-9]+")


def normalise_number(value: str) -> str:
    """A Chinese number in one national form, so that CCC's and the page's numbers compare equal.

    Spaces and dashes go. Then the country code: ``+86`` or ``0086`` always; a bare ``86`` only when an
    11-digit mobile number (starting with 1) follows, since ``86`` may also begin a local landline number
    (``862066247698`` stays as it is). A landline keeps its trunk ``0`` (CCC writes ``008602066247698``, so
    ``02066247698``), and one written without it after the country code (``+862066247698``, E.164 style)
    gets it back; 400/800 service numbers, dialled without a 0, do not. Other countries' numbers keep
    their prefix (separators removed); anything that is not digits with an optional leading ``+`` once the
    separators are gone (a number-protection id, a SIP address) is returned exactly as given.

    ``008618621520280`` -> ``18621520280``; ``008602066247698`` -> ``02066247698``;
    ``0086075512345678`` -> ``075512345678``; ``+8613012345678`` -> ``13012345678``.
    """
    text = _SEPARATORS.sub("", value)
    if not _DIGITS.fullmatch(text):
        return value
    if text.startswith("+86"):
        national = text[3:]
    elif text.startswith("0086"):
        national = text[4:]
    elif len(text) == 13 and text.startswith("861"):
        return text[2:]
    else:
        return text
    if not national or national.startswith("0") or _is_mobile(national) or _is_service(national):
        return national
    return "0" + national


def _is_mobile(national: str) -> bool:
    return len(national) == 11 and national.startswith("1")


def _is_service(national: str) -> bool:
    return len(national) == 10 and national[:3] in ("400", "800")
