import os
from pathlib import Path

import pytest
from benchmarks._common import shared_data as _find_shared_data

SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if SHARED_DATA is None or not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("../shared/data is missing, and CI=true forbids skipping")
        pytest.skip("../shared/data not present")
    return SHARED_DATA
