import pytest
from django.test import override_settings

from relais.connectors.credentials import (
    UnreadableCredentialsError,
    decrypt_credentials,
    encrypt_credentials,
)


def test_credentials_round_trip_and_are_not_readable_at_rest() -> None:
    stored = encrypt_credentials({"app_password": "abcd-efgh-ijkl-mnop"})

    assert "abcd" not in stored
    assert decrypt_credentials(stored) == {"app_password": "abcd-efgh-ijkl-mnop"}


def test_each_encryption_differs() -> None:
    assert encrypt_credentials({"a": 1}) != encrypt_credentials({"a": 1})


def test_empty_credentials_stay_empty() -> None:
    assert encrypt_credentials({}) == ""
    assert decrypt_credentials("") == {}


def test_another_secret_key_cannot_read_them() -> None:
    stored = encrypt_credentials({"app_password": "secret"})

    with (
        override_settings(SECRET_KEY="another-deployment"),
        pytest.raises(UnreadableCredentialsError),
    ):
        decrypt_credentials(stored)


def test_altered_credentials_are_refused() -> None:
    stored = encrypt_credentials({"app_password": "secret"})

    with pytest.raises(UnreadableCredentialsError):
        decrypt_credentials(stored[:-4] + "AAAA")
