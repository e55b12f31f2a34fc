"""Weight types on Vulkan (registered into products.REGISTRY on import): to be filled."""
from __future__ import annotations
