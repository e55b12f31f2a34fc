"""The inference engine: what turns a loaded model into tokens (for now, the sampler in ``sampling``)."""
