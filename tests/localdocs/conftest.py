"""LocalDocs fixtures (shared with the server's LocalDocs tests): see tests/support/localdocs_fixtures.py."""
from localdocs_fixtures import corpus, embedder, indexed, ld_env  # noqa: F401
