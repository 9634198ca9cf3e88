import pytest

from tests.experiments.builders import fire


@pytest.fixture(autouse=True)
def _fresh_client():
    # Each test's API client lives in its own (rolled back) transaction.
    fire.client = None
