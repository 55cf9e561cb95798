"""The Jira site through the `jira` package (`jira.JIRA`), its requests sent by our `HttpClient`.

`jira.JIRA` authenticates (Cloud email + API token, Data Center personal access token, OAuth 1.0a, Kerberos)
and reads the site's catalogues: server info, the user (`myself`, for the time zone), fields, projects,
statuses and link types. Its session (`client._session`, a `requests.Session` carrying the auth) is the one
every request goes through, the bulk paths too (`connectors/jira_pages.py`: search pages, changelogs,
approvals), so every auth method works for them. The package's own retries are off (`max_retries=0`) and
its session hands each request to `HttpClient.request`: one retry policy (rate limits, `Retry-After`, 5xx,
never a 4xx), one request count, one-line errors. Which call goes where, and why: README_jira.md.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jira
import requests
from jira.resilientsession import ResilientSession

from connectors.http import HttpClient, HttpSettings, InvalidPayloadError, json_of

T = TypeVar("T")

# What the package sends on every request (its default `headers` option); kept, the Accept made JSON-only.
PACKAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Type": "application/json", "X-Atlassian-Token": "no-check"}


class RoutedSession(ResilientSession):
    """`jira.JIRA`'s session, whose requests `HttpClient` sends (retries, waits, counts and errors ours).

    `ResilientSession.request` retries on its own terms and turns every 4xx into a `JIRAError`; this
    override hands the request to `http` instead, which sends it with `requests.Session.request` on this
    very session (so the package's auth, headers, cookies and TLS settings apply) and raises our
    one-line `ConnectorError`s."""

    http: HttpClient

    def __init__(self) -> None:  # never called: `route` re-classes the package's own session
        raise TypeError("use RoutedSession.route(client)")

    @classmethod
    def route(cls, client: jira.JIRA, http_settings: HttpSettings, service: str = "Jira", auth_hint: str = "",
              secrets: tuple[str, ...] = ()) -> HttpClient:
        """Make `client`'s session send through a new `HttpClient`, which is returned (bulk paths use it)."""
        session = client._session
        session.__class__ = cls  # same object, same auth: only `request` changes
        session.max_retries = 0
        session._last = threading.local()
        session.http = HttpClient(client.server_url, {}, http_settings, service=service, auth_hint=auth_hint,
                                  url_hint="JIRA_URL", secrets=secrets, session=session)
        return session.http

    def request(self, method: str, url: str | bytes, _prepare_retry_class: Any = None,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        data = kwargs.get("data")
        if isinstance(data, dict) and data:  # what ResilientSession does for dict bodies
            kwargs["data"] = json.dumps(data)
        url = url.decode() if isinstance(url, bytes) else url
        resp = self.http.request(method.upper(), url, **kwargs)
        self._last.response = resp
        return resp

    def last_response(self) -> requests.Response | None:
        """This thread's last answer (to explain a body the package could not parse)."""
        return getattr(self._last, "response", None)


def call(client: jira.JIRA, what: Callable[[], T]) -> T:
    """Run one `jira.JIRA` method; an answer it cannot read (not JSON, or lacking what it indexes) becomes a
    one-line `InvalidPayloadError` naming the request, instead of the package's ValueError or KeyError."""
    try:
        return what()
    except (ValueError, KeyError, TypeError) as e:
        resp = client._session.last_response() if isinstance(client._session, RoutedSession) else None
        if resp is None:
            raise
        json_of(resp)  # not JSON: its own one line (status, content type, how the body starts)
        where = getattr(resp, "flowlens_where", None) or f"{resp.request.method} {urlsplit(resp.url).path}"
        missing = f"no {e.args[0]!r}" if isinstance(e, KeyError) else f"an unexpected shape ({e})"
        raise InvalidPayloadError(f"{where}: {resp.status_code} with {missing} in its JSON; check JIRA_URL "
                                  "points at Jira, or report it if it persists") from None


def open_client(server: str, auth: dict[str, Any], http_settings: HttpSettings, auth_hint: str,
                secrets: tuple[str, ...]) -> tuple[jira.JIRA, HttpClient]:
    """A `jira.JIRA` for `server` with `auth` (its constructor's keyword: basic_auth, token_auth, kerberos and
    kerberos_options; or `oauth`), routed through an `HttpClient`. No request is sent, except OAuth's: the
    package checks its signature with one `GET myself` (which our client sends, counts and explains)."""
    auth = dict(auth)
    oauth = auth.pop("oauth", None)
    options = {"server": server, "rest_api_version": "2", "verify": http_settings.ca_bundle or True,
               "headers": dict(PACKAGE_HEADERS), "check_update": False}
    client = jira.JIRA(options=options, get_server_info=False, max_retries=0,
                       timeout=(http_settings.connect_timeout_s, http_settings.read_timeout_s), **auth)
    http = RoutedSession.route(client, http_settings, auth_hint=auth_hint, secrets=secrets)
    if oauth:
        # What JIRA(oauth=...) does, after routing: its check request then goes through our client.
        client._create_oauth_session({"signature_method": "RSA-SHA1", **oauth})
    return client, http


__all__ = ["PACKAGE_HEADERS", "RoutedSession", "call", "open_client"]
