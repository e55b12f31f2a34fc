// Byte-level BPE as llama.cpp does it (llm_tokenizer_bpe_session): pre-tokenize the text into words,
// map each word's bytes to GPT-2's printable stand-ins (or keep raw UTF-8, for Gemma 4), then
// repeatedly merge the adjacent pair of symbols whose merge has the lowest rank (ties: the leftmost),
// and write each symbol as its token; a symbol that is no token becomes one token per byte where the
// vocabulary has one, and nothing where it has none (llama.cpp drops it too).
#pragma once

#include <cstdint>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "hashmap.hpp"
#include "pretokenize.hpp"
#include "unicode.hpp"

namespace gk {

struct BpeOptions {
    std::vector<uint8_t> rules;   // SplitRule list, applied in turn
    bool byte_encode = true;      // GPT-2's byte-to-unicode mapping (false: raw UTF-8 and <0xXX> byte tokens)
    bool ignore_merges = false;   // a word that is a token is that token (Llama 3)
    bool newline_words = false;   // a word of newlines that is a token is that token (Gemma 4)
};

class BpeTokenizer {
  public:
    explicit BpeTokenizer(BpeOptions options) : opt_(std::move(options)) {
        for (int b = 0; b < 256; b++) byte_text_[b] = byte_stand_in(b);
    }

    void add_tokens(const std::vector<std::string> &tokens) {
        ids_.reserve(tokens.size());
        for (size_t i = 0; i < tokens.size(); i++) ids_.insert(tokens[i].data(), tokens[i].size(), (int32_t)i);
        for (int b = 0; b < 256; b++) byte_fallback_[b] = ids_.find(fallback_text(b));
    }

    // Ranks the merges ("left right", split at the first space after the first byte). Returns -1, or
    // the index of the first merge that is malformed (kind 1) or names a piece that is no token (kind 2).
    long add_merges(const std::vector<std::string> &merges, int &kind) {
        ranks_.reserve(merges.size());
        merge_result_.assign(merges.size(), -1);
        for (size_t i = 0; i < merges.size(); i++) {
            const std::string &m = merges[i];
            const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            if (space == std::string::npos) return kind = 1, (long)i;
            const int32_t left = ids_.find(m.data(), space), right = ids_.find(m.data() + space + 1, m.size() - space - 1);
            if (left < 0 || right < 0) return kind = 2, (long)i;
            ranks_.insert(left, right, (int32_t)i);
            std::string joined = m.substr(0, space) + m.substr(space + 1);
            merge_result_[i] = ids_.find(joined);
        }
        return -1;
    }

    // Appends the ids of text (UTF-8) to out.
    void encode(const std::string &text, std::vector<int32_t> &out) {
        std::lock_guard<std::mutex> lock(mutex_);  // the word cache and the scratch buffers are shared
        utf8_decode(text.data(), text.size(), cpts_, &offsets_);
        pretokenize(cpts_, opt_.rules, pieces_, scratch_);
        size_t start = 0;
        for (uint32_t len : pieces_) {
            const uint32_t b0 = offsets_[start], b1 = offsets_[start + len];
            encode_word(text.data() + b0, b1 - b0, out);
            start += len;
        }
    }

    void clear_cache() {
        std::lock_guard<std::mutex> lock(mutex_);
        cache_.clear();
    }

  private:
    struct Symbol {
        int prev, next;
        uint32_t begin, len;
        int32_t id;  // the token the symbol's text is, or -1
    };
    struct Bigram {
        int left, right;
        int32_t rank;
        uint32_t len;
    };
    struct LaterRank {  // lowest rank first; equal ranks: the leftmost first
        bool operator()(const Bigram &a, const Bigram &b) const {
            return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
        }
    };
    static constexpr size_t kCacheLimit = 1 << 17;  // words; the cache starts over when full

    // GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for U+0100...
    static std::string byte_stand_in(int b) {
        int n = 0;
        for (int c = 0; c < b; c++) n += !printable(c);
        std::string s;
        utf8_append(s, printable(b) ? (uint32_t)b : 256u + n);
        return s;
    }
    static bool printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

    std::string fallback_text(int b) const {
        if (opt_.byte_encode) return std::string(1, (char)b);  // llama.cpp looks up the raw byte alone
        static const char hex[] = "0123456789ABCDEF";
        return std::string{'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    }

    void encode_word(const char *raw, size_t n, std::vector<int32_t> &out) {
        std::string key(raw, n);
        auto hit = cache_.find(key);
        if (hit != cache_.end()) {
            out.insert(out.end(), hit->second.begin(), hit->second.end());
            return;
        }
        word_.clear();
        if (opt_.byte_encode) {
            for (size_t i = 0; i < n; i++) word_ += byte_text_[(uint8_t)raw[i]];
        } else {
            word_.assign(raw, n);
        }
        ids_out_.clear();
        merge_word(ids_out_);
        out.insert(out.end(), ids_out_.begin(), ids_out_.end());
        if (cache_.size() >= kCacheLimit) cache_.clear();
        cache_.emplace(std::move(key), ids_out_);
    }

    bool whole_word_is_token() const {
        if (opt_.ignore_merges) return true;
        return opt_.newline_words && word_.find_first_not_of('\n') == std::string::npos;
    }

    void merge_word(std::vector<int32_t> &out) {
        if (whole_word_is_token()) {
            const int32_t id = ids_.find(word_);
            if (id >= 0) {
                out.push_back(id);
                return;
            }
        }
        symbols_.clear();
        for (uint32_t off = 0; off < word_.size();) {
            const uint32_t len = (uint32_t)std::min<size_t>(utf8_len((uint8_t)word_[off]), word_.size() - off);
            const int index = (int)symbols_.size();
            symbols_.push_back({index - 1, off + len == word_.size() ? -1 : index + 1, off, len,
                                ids_.find(word_.data() + off, len)});
            off += len;
        }
        queue_ = {};
        for (int i = 1; i < (int)symbols_.size(); i++) push_bigram(i - 1, i);
        while (!queue_.empty()) {
            const Bigram b = queue_.top();
            queue_.pop();
            Symbol &left = symbols_[b.left], &right = symbols_[b.right];
            if (left.len == 0 || right.len == 0 || left.len + right.len != b.len) continue;  // stale
            left.len += right.len;
            left.id = merge_result_[b.rank];
            right.len = 0;
            left.next = right.next;
            if (right.next >= 0) symbols_[right.next].prev = b.left;
            push_bigram(left.prev, b.left);
            push_bigram(b.left, left.next);
        }
        for (int i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[i].next) write_symbol(symbols_[i], out);
    }

    void push_bigram(int left, int right) {
        if (left < 0 || right < 0) return;
        const Symbol &l = symbols_[left], &r = symbols_[right];
        if (l.id < 0 || r.id < 0) return;  // every merge joins two tokens
        const int32_t rank = ranks_.find(l.id, r.id);
        if (rank >= 0) queue_.push({left, right, rank, l.len + r.len});
    }

    void write_symbol(const Symbol &s, std::vector<int32_t> &out) const {
        if (s.id >= 0) {
            out.push_back(s.id);
            return;
        }
        for (uint32_t j = 0; j < s.len; j++) {
            const int32_t id = byte_fallback_[(uint8_t)word_[s.begin + j]];
            if (id >= 0) out.push_back(id);
        }
    }

    BpeOptions opt_;
    StringIdMap ids_;
    PairRankMap ranks_;
    std::vector<int32_t> merge_result_;  // by rank: the token the merged pair makes, or -1
    std::string byte_text_[256];
    int32_t byte_fallback_[256];

    std::mutex mutex_;
    std::unordered_map<std::string, std::vector<int32_t>> cache_;
    std::vector<uint32_t> cpts_, offsets_, pieces_, scratch_;
    std::string word_;
    std::vector<int32_t> ids_out_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram, std::vector<Bigram>, LaterRank> queue_;
};

}  // namespace gk
