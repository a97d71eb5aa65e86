"""The seal of the raw logs: leaf hashes of stored rows, Merkle roots of periods, and the hash chain of seals.

A *leaf* is SHA-256 of one stored row's canonical encoding: a 0x00 byte, then the JSON array of the log's
name and the row's stored columns in a fixed order (orjson: integers, text and nulls have one spelling; a
row whose text orjson refuses, such as a lone surrogate, is written by the standard library with ASCII
escapes, which is still one text per row). The row's id is one of the columns, so a leaf names its row.
A *root* is the Merkle tree hash of a period's leaves in id order, as Certificate Transparency computes it
(RFC 6962: an interior node is SHA-256 of 0x01 and its two children). A *chain entry* (a sealed period, or
a record of rows removed by a purge, a quarantine or an erasure) is hashed with the previous entry's hash,
and signed with HMAC-SHA-256 when a key is set. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

CHAIN_VERSION = "calltrail-seal-1"
GENESIS = "0" * 64  # the previous hash of the first entry
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf(log: str, values: Sequence[Any]) -> bytes:
    """The leaf hash (32 bytes) of a row of ``log`` with these stored values, in the log's column order."""
    document = [log, *values]
    try:
        encoded = orjson.dumps(document)
    except TypeError:
        encoded = json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()
    return hashlib.sha256(_LEAF_PREFIX + encoded).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's Merkle tree hash over leaf hashes already computed (the empty tree: SHA-256 of nothing).

    Pairs each level from the left and carries an odd last node up unchanged, which is the same tree as
    RFC 6962's split at the largest power of two below the size."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    sha = hashlib.sha256
    while len(level) > 1:
        paired = [sha(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def pack_ids(ids: Sequence[int]) -> bytes:
    """A period's row ids, ascending, as zlib-compressed differences (they compress to almost nothing)."""
    previous = 0
    deltas = []
    for value in ids:
        deltas.append(value - previous)
        previous = value
    return zlib.compress(struct.pack(f">{len(deltas)}q", *deltas), 6)


def unpack_ids(packed: bytes) -> list[int]:
    raw = zlib.decompress(packed)
    if len(raw) % 8:
        raise ValueError("the packed ids are not whole 8-byte integers")
    ids: list[int] = []
    total = 0
    for (delta,) in struct.iter_unpack(">q", raw):
        total += delta
        ids.append(total)
    return ids


def split_leaves(packed: bytes) -> list[bytes]:
    if len(packed) % 32:
        raise ValueError("the packed leaves are not whole 32-byte hashes")
    return [packed[i : i + 32] for i in range(0, len(packed), 32)]


def key_id(key: bytes) -> str:
    """A short fingerprint of a seal key, stored with each signature: which key signed, never the key."""
    return hashlib.sha256(b"calltrail-seal-key-id:" + key).hexdigest()[:16]


def entry_hash(fields: Iterable[Any]) -> str:
    """The hash of a chain entry's fields (in ``ENTRY_FIELDS`` order, the previous hash among them)."""
    return hashlib.sha256(orjson.dumps([CHAIN_VERSION, *fields])).hexdigest()


def sign(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def signature_matches(key: bytes, digest: str, signature: str) -> bool:
    return hmac.compare_digest(sign(key, digest), signature)


def ids_digest(packed_ids: bytes | None) -> str | None:
    return None if packed_ids is None else hashlib.sha256(packed_ids).hexdigest()
