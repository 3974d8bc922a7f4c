"""The preview page: static files shipped in the package (dhlive_cli/api/static), served at "/".

The files hold no data and no secret, so they are the only paths served without the token; the
page then asks for everything else with the token the user gives it (typed in, or in the URL
fragment `#token=...`, which browsers never send to a server). Host checks still apply, and
the Content-Security-Policy limits the page to its own origin: its scripts, styles and requests
go nowhere else, and no other site may frame it.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from dhlive_cli.api.guards import ApiError

# URL path -> (file in dhlive_cli/api/static, content type). A fixed table: no path of the client's
# choosing ever reaches the file system.
PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/preview.js": ("preview.js", "text/javascript; charset=utf-8"),
    "/static/preview.css": ("preview.css", "text/css; charset=utf-8"),
}
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "media-src 'self' blob: mediastream:; img-src 'self' data:; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class PageRoutes:
    """GET / and /static/* of ApiServer (a mixin). Files are read once and kept (a few KB)."""

    _page_cache: dict[str, bytes] | None = None

    async def _page(self, request: web.Request) -> web.Response:
        entry = PAGE_FILES.get(request.path)
        if entry is None:
            raise ApiError(404, "not found")
        if self._page_cache is None:
            folder = resources.files("dhlive_cli.api") / "static"
            self._page_cache = {path: (folder / name).read_bytes() for path, (name, _) in PAGE_FILES.items()}
        return web.Response(body=self._page_cache[request.path], headers={"Content-Type": entry[1], **PAGE_HEADERS})
