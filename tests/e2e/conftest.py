"""The Meltano project the end-to-end tests run, installed once per test session (every module's tests share
it, each with its own state ids and output files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e_fixtures import make_project


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Meltano project like the repository's, its tap installed from this checkout; installed once."""
    return make_project(tmp_path_factory.mktemp("meltano-project"))
