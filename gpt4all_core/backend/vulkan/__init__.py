"""The Vulkan backend: GLSL compute shaders (shaders/) compiled to SPIR-V and run through Kompute.

context: one device, the Dispatch of one op, the per-batch parameter buffer. products: weight
types on the device and their matrix-product shaders. ops: every other op. decoder: a model's
forward pass recorded once and replayed per batch. devices: the Vulkan devices there are and how a
device request ("gpu", "nvidia", "kompute:<name>", ...) picks one.
"""
