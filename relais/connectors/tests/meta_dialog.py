"""Meta's Facebook Login dialog played on 127.0.0.1, for browser tests of the login flow.

``/<version>/dialog/oauth`` shows the page Meta shows (which app asks, for what) with Continue
and Cancel; Continue sends the browser back to ``redirect_uri`` with a code and the state,
Cancel with the error Meta documents for a refusal (``error=access_denied``,
``error_reason=user_denied``). The code is then traded at the Graph contract server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from relais.tests.http_server import LocalHttpServer, respond


class MetaLoginDialog(LocalHttpServer):
    def __init__(self, code: str, on_open: Callable[[dict[str, str]], None]) -> None:
        self.code = code
        self.on_open = on_open  # told the dialog's parameters (the Graph server checks them)
        self.opened: list[dict[str, str]] = []
        super().__init__()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        if handler.command != "GET" or not re.fullmatch(r"/v\d+\.\d+/dialog/oauth", parts.path):
            respond(handler, 404, b"not found", {"Content-Type": "text/plain"})
            return
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.opened.append(params)
        self.on_open(params)
        back, state = params.get("redirect_uri", ""), params.get("state", "")
        approve = f"{back}?{urlencode({'code': self.code, 'state': state})}"
        refusal = {
            "error": "access_denied",
            "error_code": "200",
            "error_description": "Permissions error",
            "error_reason": "user_denied",
            "state": state,
        }
        deny = f"{back}?{urlencode(refusal)}"
        body = (
            "<!doctype html><title>Log in with Facebook</title>"
            f"<p>App {html.escape(params.get('client_id', ''))} would like to manage your Pages"
            f" ({html.escape(params.get('scope', ''))}).</p>"
            f'<a id="continue" href="{html.escape(approve)}">Continue</a> '
            f'<a id="cancel" href="{html.escape(deny)}">Cancel</a>'
        ).encode()
        respond(handler, 200, body, {"Content-Type": "text/html; charset=utf-8"})
