// BPE pre-tokenizers: the text, as code points, is cut into words by a list of rules applied in turn,
// each to every piece the rules before it left, keeping both what a rule matches and the gaps
// between (llama.cpp's unicode_regex_split). The rules are llama.cpp's regexes written out by hand
// with its semantics where they differ from a regex engine's: its own splitters for the GPT-2,
// Llama 3, Qwen 2 and Qwen 3.5 patterns, and for the rest what std::regex finds on its "collapsed"
// text, where \p{X} is llama.cpp's category of a code point and \s its white-space set.
#pragma once

#include <cstdint>
#include <vector>

#include "unicode.hpp"

namespace gk {

enum SplitRule : uint8_t {
    SPLIT_GPT2 = 0,        // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)  (+ \s+)
    SPLIT_LLAMA3,          // (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    SPLIT_QWEN2,           // the same with \p{N} one digit at a time
    SPLIT_QWEN35,          // Qwen 2's with marks (\p{M}) counted as letters
    SPLIT_NEWLINES,        // [^\n]+|[\n]+
    SPLIT_NUMBER_EACH,     // \p{N}
    SPLIT_NUMBER_RUN,      // \p{N}+
    SPLIT_ASCII_DIGIT3,    // [0-9][0-9][0-9]
    SPLIT_PUNCT_RUN,       // [\p{P}\$\+<=>\^~\|]+
    SPLIT_CRLF_EACH,       // [\r\n]
    SPLIT_WS_LETTER_RUN,   // \s?\p{L}+
    SPLIT_WS_PUNCT_RUN,    // \s?\p{P}+
    SPLIT_CJK_RUN,         // [一-龥ࠀ-一가-퟿]+
    SPLIT_WS_LATIN_RUN,    // \s?[A-Za-zµÀ-ÖØ-ö...𞤀-𞥃]+ (deepseek-llm's letters)
    SPLIT_WS_SYMBOL_RUN,   // \s?[!-/:-~！-／：-～‘-‟　-。]+
    SPLIT_TRAILING_WS,     // \s+$
    SPLIT_PUNCT_TICK_RUN,  // [\p{P}\$\+<=>\^~\|`]+ (Falcon's: the default's with the backtick)
    SPLIT_RULE_COUNT
};

namespace pretok {

constexpr uint32_t kNone = 0xFFFFFFFFu;

// One piece of the text; past its end there is no code point (flags 0), as llama.cpp's splitters see it.
struct Piece {
    const uint32_t *c;
    size_t n;
    uint32_t cpt(size_t i) const { return i < n ? c[i] : kNone; }
    uint16_t flags(size_t i) const { return i < n ? cp_flags(c[i]) : 0; }
};

// Appends the lengths of consecutive sub-pieces: cut(end) closes the one before `end`.
struct Cutter {
    std::vector<uint32_t> &out;
    size_t prev = 0;
    void cut(size_t end) {
        if (end > prev) out.push_back((uint32_t)(end - prev));
        prev = end;
    }
    void match(size_t begin, size_t end) { cut(begin), cut(end); }  // the gap before stays a piece
};

inline bool is_ws(uint32_t c) { return cp_flags(c) & CP_WHITESPACE; }
inline bool in_ranges(uint32_t c, const uint32_t (*r)[2], size_t n) {
    for (size_t i = 0; i < n; i++)
        if (c >= r[i][0] && c <= r[i][1]) return true;
    return false;
}

// Character classes of the regex rules; non-ASCII white space never matches a literal class because
// llama.cpp replaces it by \v before running std::regex.
inline bool is_number(uint32_t c) { return cp_flags(c) & CP_NUMBER; }
inline bool is_letter(uint32_t c) { return cp_flags(c) & CP_LETTER; }
inline bool is_punct(uint32_t c) { return cp_flags(c) & CP_PUNCTUATION; }
inline bool is_punct_or_math(uint32_t c) {
    return is_punct(c) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|';
}
inline bool is_punct_math_or_tick(uint32_t c) { return c == '`' || is_punct_or_math(c); }
inline bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }
inline bool is_cjk(uint32_t c) {
    static const uint32_t r[][2] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
    return in_ranges(c, r, 3) && !is_ws(c);
}
inline bool is_deepseek_latin(uint32_t c) {
    static const uint32_t r[][2] = {
        {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
        {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
        {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
        {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
        {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
        {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D},
        {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
        {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
        {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
        {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
        {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
        {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
        {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
        {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
        {0x1E900, 0x1E943}};
    return in_ranges(c, r, sizeof(r) / sizeof(r[0])) && !is_ws(c);
}
inline bool is_deepseek_symbol(uint32_t c) {
    static const uint32_t r[][2] = {{0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
                                    {0x2018, 0x201F}, {0x3000, 0x3002}};
    return in_ranges(c, r, 6) && !is_ws(c);
}

// X+ : runs of the class, and the gaps between them.
template <class Pred>
void split_runs(Piece p, Cutter &cut, Pred in_class) {
    for (size_t i = 0; i < p.n;) {
        if (!in_class(p.c[i])) { i++; continue; }
        size_t j = i;
        while (j < p.n && in_class(p.c[j])) j++;
        cut.match(i, j);
        i = j;
    }
}

// X : every character of the class alone.
template <class Pred>
void split_each(Piece p, Cutter &cut, Pred in_class) {
    for (size_t i = 0; i < p.n; i++)
        if (in_class(p.c[i])) cut.match(i, i + 1);
}

// \s?X+ : a run of the class with the one white space before it, if there is one.
template <class Pred>
void split_ws_runs(Piece p, Cutter &cut, Pred in_class) {
    for (size_t i = 0; i < p.n;) {
        const bool lead = is_ws(p.c[i]) && i + 1 < p.n && in_class(p.c[i + 1]);
        if (!lead && !in_class(p.c[i])) { i++; continue; }
        size_t j = i + (lead ? 1 : 0);
        while (j < p.n && in_class(p.c[j])) j++;
        cut.match(i, j);
        i = j;
    }
}

// [0-9][0-9][0-9] : leftmost groups of three ASCII digits.
inline void split_ascii_digit3(Piece p, Cutter &cut) {
    auto digit = [&](size_t k) { return p.c[k] >= '0' && p.c[k] <= '9'; };
    for (size_t i = 0; i + 3 <= p.n;) {
        if (digit(i) && digit(i + 1) && digit(i + 2)) {
            cut.match(i, i + 3);
            i += 3;
        } else {
            i++;
        }
    }
}

// \s+$ : the white space at the end of the piece.
inline void split_trailing_ws(Piece p, Cutter &cut) {
    size_t i = p.n;
    while (i > 0 && is_ws(p.c[i - 1])) i--;
    if (i < p.n) cut.match(i, p.n);
}

// [^\n]+|[\n]+
inline void split_newlines(Piece p, Cutter &cut) {
    for (size_t i = 1; i < p.n; i++)
        if ((p.c[i] == '\n') != (p.c[i - 1] == '\n')) cut.cut(i);
}

// The contractions 's 't 're 've 'm 'll 'd at i; returns their length, or 0. Llama 3 and Qwen
// compare case-insensitively (by llama.cpp's lowercase table), GPT-2 does not.
inline size_t contraction(Piece p, size_t i, bool fold) {
    if (p.c[i] != '\'' || i + 1 >= p.n) return 0;
    auto at = [&](size_t k) { return fold ? cp_tolower(p.c[k]) : p.c[k]; };
    const uint32_t a = at(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= p.n) return 0;
    const uint32_t b = at(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// The white-space tail shared by the GPT-2 and Llama 3 splitters: \s+(?!\S) keeps the last white
// space for the word after it, unless the piece ends there; then \s+. Returns the new position.
inline size_t white_space_run(Piece p, size_t pos) {
    size_t n = 0;
    while (p.flags(pos + n) & CP_WHITESPACE) n++;
    if (n > 1 && pos + n < p.n) return pos + n - 1;
    return pos + (n > 0 ? n : 1);  // \s+, or no match at all: one character alone
}

inline void split_gpt2(Piece p, Cutter &cut) {
    for (size_t pos = 0; pos < p.n;) {
        const uint32_t cpt = p.c[pos];
        if (size_t len = contraction(p, pos, false)) {
            cut.cut(pos += len);
            continue;
        }
        const size_t sp = cpt == ' ' ? 1 : 0;  // the optional space of " ?X+"
        const uint16_t f2 = p.flags(pos + sp);
        const uint16_t other = CP_WHITESPACE | CP_LETTER | CP_NUMBER;
        uint16_t run_of = 0;
        if (f2 & CP_LETTER) run_of = CP_LETTER;
        else if (f2 & CP_NUMBER) run_of = CP_NUMBER;
        if (run_of) {
            pos += sp;
            while (p.flags(pos) & run_of) pos++;
        } else if (!(f2 & other) && f2) {
            pos += sp;
            while (!(p.flags(pos) & other) && p.flags(pos)) pos++;
        } else {
            pos = white_space_run(p, pos);
        }
        cut.cut(pos);
    }
}

// Llama 3 (max_digits 3), Qwen 2 (1) and Qwen 3.5 (1, marks as letters), as llama.cpp's splitters do it.
inline void split_llama3_like(Piece p, Cutter &cut, size_t max_digits, bool marks_are_letters) {
    const uint16_t word = CP_LETTER | (marks_are_letters ? CP_MARK : 0);
    const uint16_t other = CP_WHITESPACE | CP_NUMBER | word;
    for (size_t pos = 0; pos < p.n;) {
        const uint32_t cpt = p.c[pos];
        const uint16_t f = p.flags(pos);
        if (size_t len = contraction(p, pos, true)) {
            cut.cut(pos += len);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (!is_crlf(cpt) && !(f & CP_NUMBER) && ((f & word) || (p.flags(pos + 1) & word))) {
            pos++;
            while (p.flags(pos) & word) pos++;
            cut.cut(pos);
            continue;
        }
        // \p{N}{1,max_digits}
        if (f & CP_NUMBER) {
            size_t ini = pos;
            while (p.flags(pos) & CP_NUMBER) {
                if (++pos - ini >= max_digits) cut.cut(ini = pos);
            }
            cut.cut(pos);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (llama.cpp tests the unshifted flags for "is a character")
        const size_t sp = cpt == ' ' ? 1 : 0;
        if (!(p.flags(pos + sp) & other) && f) {
            pos += sp;
            while (!(p.flags(pos) & other) && p.flags(pos)) pos++;
            while (is_crlf(p.cpt(pos))) pos++;
            cut.cut(pos);
            continue;
        }
        // \s*[\r\n]+ : white space up to its last line break
        size_t n_ws = 0, after_crlf = 0;
        for (; p.flags(pos + n_ws) & CP_WHITESPACE; n_ws++)
            if (is_crlf(p.c[pos + n_ws])) after_crlf = pos + n_ws + 1;
        pos = after_crlf ? after_crlf : white_space_run(p, pos);
        cut.cut(pos);
    }
}

inline void apply_rule(SplitRule rule, Piece p, Cutter &cut) {
    switch (rule) {
        case SPLIT_GPT2: split_gpt2(p, cut); break;
        case SPLIT_LLAMA3: split_llama3_like(p, cut, 3, false); break;
        case SPLIT_QWEN2: split_llama3_like(p, cut, 1, false); break;
        case SPLIT_QWEN35: split_llama3_like(p, cut, 1, true); break;
        case SPLIT_NEWLINES: split_newlines(p, cut); break;
        case SPLIT_NUMBER_EACH: split_each(p, cut, is_number); break;
        case SPLIT_NUMBER_RUN: split_runs(p, cut, is_number); break;
        case SPLIT_ASCII_DIGIT3: split_ascii_digit3(p, cut); break;
        case SPLIT_PUNCT_RUN: split_runs(p, cut, is_punct_or_math); break;
        case SPLIT_CRLF_EACH: split_each(p, cut, is_crlf); break;
        case SPLIT_WS_LETTER_RUN: split_ws_runs(p, cut, is_letter); break;
        case SPLIT_WS_PUNCT_RUN: split_ws_runs(p, cut, is_punct); break;
        case SPLIT_CJK_RUN: split_runs(p, cut, is_cjk); break;
        case SPLIT_WS_LATIN_RUN: split_ws_runs(p, cut, is_deepseek_latin); break;
        case SPLIT_WS_SYMBOL_RUN: split_ws_runs(p, cut, is_deepseek_symbol); break;
        case SPLIT_TRAILING_WS: split_trailing_ws(p, cut); break;
        case SPLIT_PUNCT_TICK_RUN: split_runs(p, cut, is_punct_math_or_tick); break;
        default: break;
    }
    cut.cut(p.n);
}

}  // namespace pretok

// Splits cpts into words: returns their lengths in code points, in order, covering all of cpts.
inline void pretokenize(const std::vector<uint32_t> &cpts, const std::vector<uint8_t> &rules,
                        std::vector<uint32_t> &pieces, std::vector<uint32_t> &scratch) {
    pieces.assign(1, (uint32_t)cpts.size());
    if (cpts.empty()) {
        pieces.clear();
        return;
    }
    for (uint8_t rule : rules) {
        scratch.clear();
        size_t start = 0;
        for (uint32_t len : pieces) {
            pretok::Cutter cut{scratch};
            pretok::apply_rule((SplitRule)rule, pretok::Piece{cpts.data() + start, len}, cut);
            start += len;
        }
        pieces.swap(scratch);
    }
}

}  // namespace gk
