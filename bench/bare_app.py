"""The baseline of the API benchmark: a bare Starlette app doing the least a JSON API can do.

`POST /bare` parses a small JSON body and answers 201 with a small JSON object; `GET /bare/{id}`
answers a small JSON object. No database, no auth, no middleware: what remains is the cost of
uvicorn + Starlette + JSON, which the real routes are compared against under the same server
settings.

Run alone:  python bench/bare_app.py --port 8001 [--workers 2]
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def create_item(request: Request) -> JSONResponse:
    body = await request.json()
    item = {"id": str(uuid.uuid4()), "tool_id": body.get("tool_id"), "status": "CREATED", "progress": 0}
    return JSONResponse(item, status_code=201)


async def read_item(request: Request) -> JSONResponse:
    item_id = request.path_params["item_id"]
    item = {"id": item_id, "tool_id": "profile-my-data", "status": "CREATED", "progress": 0}
    return JSONResponse(item)


app = Starlette(
    routes=[
        Route("/bare", create_item, methods=["POST"]),
        Route("/bare/{item_id}", read_item, methods=["GET"]),
    ]
)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "bare_app:app",
        app_dir=str(Path(__file__).parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
