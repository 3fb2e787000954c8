import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from relais.connectors.atproto_oauth import new_client_key


def test_a_malformed_bluesky_client_key_stops_the_server_before_it_starts(settings: Any) -> None:
    keys = json.dumps({"kty": "EC", "crv": "P-256"})
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": keys}
    with pytest.raises(SystemCheckError, match=r"key 1: the private part \(d\) is missing"):
        call_command("check")


def test_a_valid_bluesky_client_key_passes_the_checks(settings: Any) -> None:
    keys = json.dumps(new_client_key())
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": keys}
    call_command("check")
