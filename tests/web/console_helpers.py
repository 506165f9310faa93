"""Helpers for driving the console through a TestClient: sign in, read the CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

from tests.factories import PASSWORD

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(
    client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/"
) -> Response:
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next_path},
        follow_redirects=False,
    )


def signed_in(client: TestClient, username: str) -> str:
    """Sign ``username`` in and return the session's CSRF token."""
    response = login(client, username)
    assert response.status_code == 303, response.text
    return csrf(client)


def csrf(client: TestClient, path: str = "/") -> str:
    match = CSRF_RE.search(client.get(path).text)
    assert match, "no CSRF token on the page"
    return match.group(1)
