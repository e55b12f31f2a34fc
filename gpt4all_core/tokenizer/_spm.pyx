# cython: language_level=3
# distutils: language = c++
"""The SPM merge loop in C++ (spm.hpp); Python hands over the vocabulary once and text as UTF-8."""
from libc.stdint cimport int32_t
from libcpp.string cimport string
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

cdef extern from "spm.hpp" namespace "gk" nogil:
    cdef cppclass SpmVocab:
        unordered_map[string, int32_t] token_to_id
        vector[float] scores
        int32_t byte_tokens[256]

    cdef cppclass SpmTokenizer:
        SpmTokenizer(const SpmVocab &vocab)
        int tokenize(const string &text, vector[int32_t] &out)


cdef class SpmModel:
    cdef SpmVocab vocab

    def __cinit__(self, list tokens, scores, byte_tokens):
        cdef Py_ssize_t i
        for i, token in enumerate(tokens):
            self.vocab.token_to_id[token.encode("utf-8", "surrogateescape")] = <int32_t>i  # the last of duplicates wins
        self.vocab.scores = [float(s) for s in scores]
        for i in range(256):
            self.vocab.byte_tokens[i] = byte_tokens[i]

    def encode(self, str text):
        """Token ids of text (spaces escaped as U+2581 already)."""
        cdef string raw = text.encode("utf-8", "surrogateescape")
        cdef vector[int32_t] out
        cdef int rc
        cdef SpmTokenizer *tok = new SpmTokenizer(self.vocab)
        try:
            with nogil:
                rc = tok.tokenize(raw, out)
        finally:
            del tok
        if rc != 0:
            raise ValueError("a byte of the text has no token in this vocabulary (no byte fallback)")
        return out
