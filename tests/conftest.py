"""Fixtures that several test modules use."""

from __future__ import annotations

import pytest

from sandbox.generator import generate
from tests.published import Built, build


@pytest.fixture(scope="session")
def small_org():
    """The sandbox's small organisation, seed 1."""
    return generate("small", 1)


@pytest.fixture(scope="session")
def bi(tmp_path_factory, small_org) -> Built:
    """Its warehouse and published snapshot, min_group_size 4 (the 3-member security team is `other`)."""
    return build(tmp_path_factory.mktemp("bi"), small_org)
