"""Pages of the web UI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from photos.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request) -> Response:
    return render(request, "home.html")
