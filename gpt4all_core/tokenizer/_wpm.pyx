# cython: language_level=3
# distutils: language = c++
"""The WordPiece normalizer and longest-match loop in C++ (wpm.hpp)."""
from libc.stdint cimport int32_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

cdef extern from "wpm.hpp" namespace "gk" nogil:
    cdef cppclass WpmTokenizer:
        WpmTokenizer(cbool lowercase, cbool strip_accents, int32_t unk_id)
        void add_tokens(const vector[string] &tokens)
        void encode(const string &text, vector[int32_t] &out)
        void clear_cache()


cdef class WpmModel:
    cdef WpmTokenizer *tok

    def __cinit__(self, list tokens, bint lowercase, bint strip_accents, int unk_id):
        cdef vector[string] raw
        raw.reserve(len(tokens))
        for t in tokens:
            raw.push_back(t.encode("utf-8", "surrogateescape"))
        self.tok = new WpmTokenizer(lowercase, strip_accents, unk_id)
        self.tok.add_tokens(raw)

    def __dealloc__(self):
        del self.tok

    def encode(self, str text):
        """Token ids of text (one fragment between special tokens), without CLS/SEP."""
        cdef string raw = text.encode("utf-8", "surrogatepass")
        cdef vector[int32_t] out
        with nogil:
            self.tok.encode(raw, out)
        return out

    def clear_cache(self):
        """Forget the words seen so far (each word's ids are kept, up to 131072 words)."""
        self.tok.clear_cache()
