"""How deep a JSON text nests, read off its bytes without parsing it: every body CallTrail stores (events,
CCC's records) is checked before a parser sees it, so nothing stored can break a read path later."""

from __future__ import annotations

# The deepest nesting of arrays and objects a body may have, the envelope's own three levels included (body,
# events, event). orjson writes at most 255 levels and the read paths wrap stored events in a few more, so a
# limit far below that keeps every stored event readable, whatever the answer it is embedded in.
MAX_JSON_DEPTH = 32

# The depth of a body without parsing it: all but quotes and brackets deleted, braces made brackets.
_FOLD_BRACES = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects more than ``limit`` levels deep, found without parsing
    it (a parser would recurse through all of them first), in a few passes at C speed.

    Exact for valid JSON; what it says of invalid JSON does not matter, since a parser rejects that anyway.
    Escaped backslashes go first, then escaped quotes, so every quote left opens or closes a string; what lies
    between a pair is string content, whose brackets do not nest. Each pass then removes the innermost level.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = body.translate(_FOLD_BRACES, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:
        structure = b"".join(structure.split(b'"')[::2])
    for _ in range(limit):
        if not structure:
            return False
        structure = structure.replace(b"[]", b"")
    return bool(structure)
