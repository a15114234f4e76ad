"""The dashboard's stylesheet and script (shipped in the package) and Inter (from Debian's fonts-inter, which the
host's deploy installs; without it the pages fall back to the system's UI font). Nothing loads from elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

STATIC = Path(__file__).resolve().parent / "static"
FONTS = Path("/usr/share/fonts/opentype/inter")
FILES = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
FONT_FILES = ("Inter-Regular.otf", "Inter-Medium.otf", "Inter-SemiBold.otf")
CACHE = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get("/static/{name}")
def static(name: Annotated[str, PathParam(max_length=40)]) -> Response:
    if name not in FILES:  # a fixed list: no path from the request reaches the file system
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=FILES[name], headers=CACHE)


@router.get("/static/fonts/{name}")
def font(name: Annotated[str, PathParam(max_length=40)]) -> Response:
    path = FONTS / name
    if name not in FONT_FILES or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type="font/otf", headers=CACHE)
