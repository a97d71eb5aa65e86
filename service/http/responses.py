from __future__ import annotations

from typing import Any

from starlette.responses import Response

from service.formats import dumps


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
