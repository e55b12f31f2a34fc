"""The Vulkan backend's tests run on the first Vulkan device: Mesa's lavapipe in CI (dev.sh
installs it), a real GPU where there is one. No skipping: a missing device is a failure."""
from __future__ import annotations

import pytest

from gpt4all_core.backend.vulkan.context import get_context


@pytest.fixture(scope="session")
def vk():
    return get_context(0)
