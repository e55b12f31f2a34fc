// SentencePiece-style tokenization as llama.cpp does it (its llm_tokenizer_spm): start from the
// UTF-8 characters of the text, repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring token (ties: the leftmost pair), then write each symbol as its token, splitting
// it back along its merges when it is not one, and as <0xXX> byte tokens at the bottom.
#pragma once

#include <cstdint>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace gk {

struct SpmVocab {
    std::unordered_map<std::string, int32_t> token_to_id;
    std::vector<float> scores;
    int32_t byte_tokens[256];  // <0xXX> (or the one-byte token), -1 where the vocabulary has neither
};

class SpmTokenizer {
  public:
    explicit SpmTokenizer(const SpmVocab &vocab) : vocab_(vocab) {}

    // Appends the ids of `text` (spaces already escaped as U+2581) to out. Returns 0, or -1 when a
    // byte has no token (the vocabulary lacks byte fallback).
    int tokenize(const std::string &text, std::vector<int32_t> &out) {
        symbols_.clear();
        rev_merge_.clear();
        queue_ = {};
        for (size_t offs = 0; offs < text.size();) {
            static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
            const size_t len = std::min<size_t>(utf8_len[(uint8_t)text[offs] >> 4], text.size() - offs);
            const int index = (int)symbols_.size();
            symbols_.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, text.data() + offs, len});
            offs += len;
        }
        for (int i = 1; i < (int)symbols_.size(); i++) try_add_bigram(i - 1, i);
        while (!queue_.empty()) {
            const Bigram b = queue_.top();
            queue_.pop();
            Symbol &left = symbols_[b.left], &right = symbols_[b.right];
            if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;  // stale: a side merged since
            left.n += right.n;
            right.n = 0;
            left.next = right.next;
            if (right.next >= 0) symbols_[right.next].prev = b.left;
            try_add_bigram(left.prev, b.left);
            try_add_bigram(b.left, left.next);
        }
        for (int i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[i].next)
            if (resegment(symbols_[i], out) != 0) return -1;
        return 0;
    }

  private:
    struct Symbol {
        int prev, next;
        const char *text;
        size_t n;
    };
    struct Bigram {
        int left, right;
        float score;
        size_t size;
    };
    struct ByScore {  // a max-heap on score; equal scores: the smaller left index first
        bool operator()(const Bigram &l, const Bigram &r) const {
            return l.score < r.score || (l.score == r.score && l.left > r.left);
        }
    };

    void try_add_bigram(int left, int right) {
        if (left == -1 || right == -1) return;
        std::string text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
        const auto it = vocab_.token_to_id.find(text);
        if (it == vocab_.token_to_id.end() || it->second >= (int32_t)vocab_.scores.size()) return;
        queue_.push({left, right, vocab_.scores[it->second], text.size()});
        rev_merge_[text] = {left, right};
    }

    int resegment(const Symbol &symbol, std::vector<int32_t> &out) {
        const std::string text(symbol.text, symbol.n);
        const auto it = vocab_.token_to_id.find(text);
        if (it != vocab_.token_to_id.end()) {
            out.push_back(it->second);
            return 0;
        }
        const auto merge = rev_merge_.find(text);
        if (merge == rev_merge_.end()) {
            for (size_t j = 0; j < symbol.n; j++) {
                const int32_t id = vocab_.byte_tokens[(uint8_t)symbol.text[j]];
                if (id < 0) return -1;
                out.push_back(id);
            }
            return 0;
        }
        if (resegment(symbols_[merge->second.first], out) != 0) return -1;
        return resegment(symbols_[merge->second.second], out);
    }

    const SpmVocab &vocab_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram, std::vector<Bigram>, ByScore> queue_;
    std::unordered_map<std::string, std::pair<int, int>> rev_merge_;
};

}  // namespace gk
