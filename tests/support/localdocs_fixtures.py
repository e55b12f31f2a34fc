"""LocalDocs fixtures (tests/localdocs and tests/server): a private cache with the default embedding model converted from MiniLM's
test folder, one shared Embed4All, the generated corpus indexed once per session."""
from __future__ import annotations

import pytest
from bert_files import private_default_embedding_model

from gpt4all_core import Embed4All


@pytest.fixture(scope="session")
def ld_env(tmp_path_factory):
    """GPT4ALL_CORE_CACHE (the default embedding model) and GPT4ALL_CORE_LOCALDOCS_DB private to the tests."""
    folder = tmp_path_factory.mktemp("ld-cache")
    with private_default_embedding_model(folder, GPT4ALL_CORE_LOCALDOCS_DB=str(folder / "default-localdocs.db")):
        yield folder


@pytest.fixture(scope="session")
def embedder(ld_env):
    with Embed4All(n_threads=2) as e:
        yield e


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    from localdocs_corpus import make_corpus
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def indexed(tmp_path_factory, corpus, embedder):
    """(LocalDocs, IndexStats) of the corpus in collection "corpus"."""
    from gpt4all_core.localdocs import LocalDocs
    db = LocalDocs(tmp_path_factory.mktemp("ld-db") / "corpus.db", embedder)
    stats = db.add("corpus", corpus)
    yield db, stats
    db.close()
