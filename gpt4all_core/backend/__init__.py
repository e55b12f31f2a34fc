"""Backends: where tensors live and ops run (CPU kernels now; Vulkan to come)."""
