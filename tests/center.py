"""A small contact center's event history, random but reproducible, for the query API's tests."""

from __future__ import annotations

import random
import uuid
from typing import Any

from service.storage.events import EventRow
from tests.projection_helpers import hash_row, message_row

CUSTOMERS = [f"1380000{n:04d}" for n in range(40)]


def center_history(
    site_id: int, seed: int, start_ms: int, *, agents: int = 4, calls: int = 14
) -> list[EventRow]:
    """Per agent one pop-up page: voice calls one after another (answered, not answered, joined mid-call or
    still ringing), chats that overlap, cards and call-outs while connected."""
    rng = random.Random(seed)
    rows: list[EventRow] = []
    for a in range(agents):
        agent = f"agentEmail=agent{a}%40x.com&agentNickName=Agent{a}&sdkAppId=1400"
        page = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        timed: list[tuple[int, str, Any]] = []  # (time, kind, payload)
        t = start_ms + rng.randrange(0, 3_600_000)
        for _ in range(calls):
            t += rng.randrange(60_000, 4 * 3_600_000)
            customer = rng.choice(CUSTOMERS)
            channel = rng.choice(["phone", "phone", "im", "oim"])
            call = f"mobile={customer}&type={channel}&{agent}"
            fate = rng.random()
            ring = rng.randrange(500, 45_000)
            talk = rng.randrange(5_000, 1_500_000)
            if fate < 0.08:  # the page joined while connected
                timed += [(t, "hash", f"#?{call}&status=200"), (t + talk, "hash", f"#?{call}&status=400")]
                continue
            timed.append((t, "hash", f"#?{call}&status=100"))
            if fate < 0.28:
                timed.append((t + rng.randrange(300, 30_000), "hash", f"#?{call}&status=400"))
                continue
            if fate < 0.32:
                continue  # rings and is never heard of again (a timeout, read-time)
            timed.append((t + ring, "hash", f"#?{call}&status=200"))
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                header = rng.choice(["Offer A", "Offer B", "Survey"])
                at = t + ring + rng.randrange(1_000, talk)
                timed.append(
                    (
                        at,
                        "sendCard",
                        {"header": header, "desc": "d", "pic": "p", "url": f"https://x/{header}"},
                    )
                )
            if rng.random() < 0.3:
                target = rng.choice(CUSTOMERS)
                timed.append(
                    (
                        t + ring + rng.randrange(1_000, talk),
                        "callOut",
                        {"phoneNumber": target, "desc": "back"},
                    )
                )
            timed.append((t + ring + talk, "hash", f"#?{call}&status=400"))
            if channel in ("phone", "om"):
                t += ring + talk
        # A chat that rings and is never heard of again: read as ended by timeout, outcome unknown.
        timed.append((t + 60_000, "hash", f"#?mobile={rng.choice(CUSTOMERS)}&type=im&{agent}&status=100"))
        timed.sort(key=lambda item: item[0])
        for seq, (at, kind, payload) in enumerate(timed, start=1):
            if kind == "hash":
                rows.append(hash_row(site_id, page, seq, at, payload))
            else:
                rows.append(message_row(site_id, page, seq, at, kind, payload))
    return rows
