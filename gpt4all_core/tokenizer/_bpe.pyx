# cython: language_level=3
# distutils: language = c++
"""The BPE pre-tokenizer and merge loop in C++ (bpe.hpp, pretokenize.hpp); Python hands over the
vocabulary and merges once and text as UTF-8."""
from libc.stdint cimport int32_t, uint8_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

cdef extern from "bpe.hpp" namespace "gk" nogil:
    cdef cppclass BpeOptions:
        vector[uint8_t] rules
        cbool byte_encode
        cbool ignore_merges
        cbool newline_words

    cdef cppclass BpeTokenizer:
        BpeTokenizer(BpeOptions options)
        void add_tokens(const vector[string] &tokens)
        long add_merges(const vector[string] &merges, int &kind)
        void encode(const string &text, vector[int32_t] &out)
        void clear_cache()

    cdef enum SplitRule:
        SPLIT_RULE_COUNT

RULE_COUNT = SPLIT_RULE_COUNT


cdef vector[string] utf8_strings(list items):
    cdef vector[string] out
    out.reserve(len(items))
    for s in items:
        out.push_back(s.encode("utf-8", "surrogateescape"))
    return out


cdef class BpeModel:
    cdef BpeTokenizer *tok

    def __cinit__(self, list tokens, bytes rules, bint byte_encode, bint ignore_merges, bint newline_words):
        cdef BpeOptions opt
        for r in rules:
            if r >= SPLIT_RULE_COUNT:
                raise ValueError(f"unknown split rule {r}")
            opt.rules.push_back(r)
        opt.byte_encode = byte_encode
        opt.ignore_merges = ignore_merges
        opt.newline_words = newline_words
        self.tok = new BpeTokenizer(opt)
        self.tok.add_tokens(utf8_strings(tokens))

    def add_merges(self, list merges):
        """Ranks merges ("left right"); returns None, or (index, what is wrong) for the first bad one."""
        cdef int kind = 0
        cdef long bad = self.tok.add_merges(utf8_strings(merges), kind)
        if bad < 0:
            return None
        return bad, ("is malformed (no space between two pieces)" if kind == 1 else "names a piece that is not a token")

    def __dealloc__(self):
        del self.tok

    def encode(self, str text):
        """Token ids of text (one fragment between special tokens)."""
        cdef string raw = text.encode("utf-8", "surrogatepass")
        cdef vector[int32_t] out
        with nogil:
            self.tok.encode(raw, out)
        return out

    def clear_cache(self):
        """Forget the words seen so far (each word's ids are kept, up to 131072 words)."""
        self.tok.clear_cache()
