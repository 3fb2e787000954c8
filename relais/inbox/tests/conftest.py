import pytest

from relais.inbox import suggest


@pytest.fixture(autouse=True)
def _fresh_suggestion_indexes() -> None:
    """Indexes are cached per process by account id, which test databases reuse."""
    suggest.clear_indexes()
