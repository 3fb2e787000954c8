"""A ``requests`` transport adapter that sends every request through ``HttpClient``.

Some network libraries (Mastodon.py) speak HTTP through a ``requests.Session`` they are given.
Mounted with this adapter, that session opens no socket of its own: each request goes through
``relais.connectors.client.HttpClient``, so it gets the project's timeouts, retries with backoff
on 429 and 5xx (honouring Retry-After), the network guard and the mapping of error answers to
connector errors, exactly as the project's own calls do.

Every HTTP answer, success or error, goes back to the library as a ``requests.Response``, so its
own handling still runs (Mastodon.py expects a 404 from servers without OAuth discovery). The
connector error HttpClient mapped an error answer to is kept as ``failure()``: the caller
raises that one rather than the library's exception (``connector_error``). When no answer came
at all (a timeout or a refused connection, after HttpClient's retries), the connector error is
raised through the library, which wraps it; ``connector_error`` finds it in the chain.

The body of the last answer stays readable (``last_answer()``): a connector stores payloads
exactly as the server sent them, not as a library re-typed them.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from relais.connectors.base import ConnectorError
from relais.connectors.client import HttpClient

# requests adds these for its own transport; httpx sets its own (and decodes what it asked for).
_TRANSPORT_HEADERS = frozenset({"accept-encoding", "connection", "content-length", "host"})
# httpx has already decoded the body: these no longer describe what the library receives.
_DECODED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class HttpClientAdapter(BaseAdapter):
    """Hands each prepared request to an ``HttpClient``; per-thread record of the last answer."""

    def __init__(self, http: HttpClient) -> None:
        super().__init__()
        self.http = http
        self._last = threading.local()

    def send(  # noqa: PLR0917 - requests' BaseAdapter.send signature
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send through HttpClient; its timeouts apply (the library's ``timeout`` is ignored)."""
        self.forget()
        if stream:
            raise ConnectorError("streamed responses are read with HttpClient.stream_lines")
        method = str(request.method or "GET")
        url = str(request.url or "")
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, bytes):
            raise ConnectorError(f"{method} {httpx.URL(url).path}: a body that is not bytes")
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() not in _TRANSPORT_HEADERS
        }
        try:
            answer = self.http.request(method, url, content=body, headers=headers)
        except ConnectorError as exc:
            if exc.status_code is None:
                raise  # no answer came: the library wraps this, connector_error() finds it
            self._last.failure = exc
            return self._response(request, exc.status_code, {}, exc.body.encode(), url)
        self._last.answer = answer
        return self._response(
            request, answer.status_code, answer.headers, answer.content, str(answer.url)
        )

    def close(self) -> None:
        """The HttpClient belongs to whoever made it: closing the session leaves it open."""

    def forget(self) -> None:
        """Start a new call on this thread: no answer and no failure recorded yet."""
        self._last.answer = None
        self._last.failure = None

    def last_answer(self) -> httpx.Response | None:
        """The last successful answer on this thread (None after an error answer)."""
        answer: httpx.Response | None = getattr(self._last, "answer", None)
        return answer

    def failure(self) -> ConnectorError | None:
        """The connector error of the last request on this thread, if it was answered with one."""
        failure: ConnectorError | None = getattr(self._last, "failure", None)
        return failure

    def connector_error(self, exc: BaseException) -> ConnectorError:
        """The connector error behind a library's exception: the last error answer's, else one
        raised through the library (no answer), else the library's own message."""
        failure = self.failure()
        if failure is not None:
            return failure
        seen: set[int] = set()
        cause: BaseException | None = exc
        while cause is not None and id(cause) not in seen:
            if isinstance(cause, ConnectorError):
                return cause
            seen.add(id(cause))
            cause = cause.__cause__ or cause.__context__
        return ConnectorError(f"{exc.__class__.__name__}: {str(exc)[:500]}")

    @staticmethod
    def _response(
        request: requests.PreparedRequest,
        status: int,
        headers: httpx.Headers | dict[str, str],
        content: bytes,
        url: str,
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(
            {k: v for k, v in headers.items() if k.lower() not in _DECODED_HEADERS}
        )
        response._content = content
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.url = url
        response.request = request
        response.reason = httpx.codes.get_reason_phrase(status)
        return response


def bridged_session(http: HttpClient) -> tuple[requests.Session, HttpClientAdapter]:
    """A requests session whose every http(s) request goes through ``http``; nothing else."""
    adapter = HttpClientAdapter(http)
    session = requests.Session()
    session.trust_env = False  # no .netrc or proxy settings from the environment
    session.adapters.clear()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, adapter
