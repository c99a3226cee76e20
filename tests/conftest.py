import os
from pathlib import Path

import pytest


def _find_shared_data() -> Path | None:
    env = os.environ.get("ATOMSCOPE_SHARED_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for parent in [here, *here.parents]:
        cand = parent.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if SHARED_DATA is None or not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("../shared/data is missing, and CI=true forbids skipping")
        pytest.skip("../shared/data not present")
    return SHARED_DATA
