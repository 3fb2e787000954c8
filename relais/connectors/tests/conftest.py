from collections.abc import Iterator

import pytest

from relais.connectors.tests import bluesky_testbed
from relais.connectors.tests.feedserver import FeedServer


@pytest.fixture(scope="session")
def pds() -> Iterator[bluesky_testbed.Testbed]:
    """The real reference PDS and a PLC directory on 127.0.0.1 (installed from npm once)."""
    if missing := bluesky_testbed.node_tools_missing():
        pytest.skip(f"the Bluesky testbed needs Node and npm: {missing}")
    testbed = bluesky_testbed.start()
    yield testbed
    testbed.stop()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    """A local feed host; put fixture names under paths in ``feeds.files``."""
    server = FeedServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
