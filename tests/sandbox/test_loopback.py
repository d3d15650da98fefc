"""Which webhook URLs an emulator accepts: loopback hosts only."""

from __future__ import annotations

import pytest

from sandbox.loopback import is_loopback_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/webhooks/stripe",
        "https://127.9.8.7/hook",
        "http://[::1]:8000/webhooks/zendesk",
        "http://localhost/hook",
        "http://LOCALHOST:9/hook",
    ],
)
def test_accepts_loopback_urls(url: str) -> None:
    assert is_loopback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://gateway.example.com/webhooks/stripe",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://128.0.0.1/hook",
        "http://localhost.example.com/hook",
        "http://127.0.0.1.nip.io/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "ftp://127.0.0.1/hook",
        "http://127.0.0.1:99999/hook",
        "/webhooks/stripe",
        "",
    ],
)
def test_refuses_other_urls(url: str) -> None:
    assert not is_loopback_url(url)
