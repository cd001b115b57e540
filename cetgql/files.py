"""File downloads behind signed, expiring URLs (see ``services/signed_urls``).

The URL is the permission: the GraphQL field that handed it out already checked who may see
the file, and an ``<img>`` tag or a download cannot carry our bearer token. A missing, wrong or
expired signature is 403 whether or not the file exists, so the route reveals nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cetgql.services import roster, signed_urls

_PRIVATE_HEADERS = {
    "Cache-Control": "private, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
}


def _signed(request: Request, path: str) -> bool:
    query = request.query_params
    return signed_urls.verify(path, query.get("expires"), query.get("signature"))


async def roster_photo(request: Request) -> Response:
    record_id: int = request.path_params["record_id"]
    if not _signed(request, roster.photo_path(record_id)):
        return Response("Forbidden: the link is invalid or has expired.", status_code=403)
    found = await roster.photo_of(record_id)
    if found is None:
        return Response("Not found.", status_code=404)
    content, content_type = found
    return Response(content, media_type=content_type, headers=_PRIVATE_HEADERS)
