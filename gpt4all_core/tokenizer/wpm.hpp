// WordPiece as llama.cpp does it (llm_tokenizer_wpm_session): normalize (first code point of the
// decomposition, marks dropped, lowercase), split on white space and around punctuation, ASCII
// symbols and CJK ideographs, then cover each word, prefixed with U+2581, by the longest tokens
// from the left; a word that cannot be covered is the unknown token.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "hashmap.hpp"
#include "unicode.hpp"

namespace gk {

class WpmTokenizer {
  public:
    WpmTokenizer(bool lowercase, bool strip_accents, int32_t unk_id)
        : lowercase_(lowercase), strip_accents_(strip_accents), unk_id_(unk_id) {}

    void add_tokens(const std::vector<std::string> &tokens) {
        ids_.reserve(tokens.size());
        for (size_t i = 0; i < tokens.size(); i++) {
            ids_.insert(tokens[i].data(), tokens[i].size(), (int32_t)i);
            max_len_ = std::max(max_len_, tokens[i].size());
        }
    }

    void encode(const std::string &text, std::vector<int32_t> &out) {
        std::lock_guard<std::mutex> lock(mutex_);
        split_words(text);
        for (const std::string &word : words_) {
            if (word.empty()) continue;
            auto hit = cache_.find(word);
            if (hit == cache_.end()) {
                if (cache_.size() >= kCacheLimit) cache_.clear();
                hit = cache_.emplace(word, cover(word)).first;
            }
            out.insert(out.end(), hit->second.begin(), hit->second.end());
        }
    }

    void clear_cache() {
        std::lock_guard<std::mutex> lock(mutex_);
        cache_.clear();
    }

  private:
    static constexpr size_t kCacheLimit = 1 << 17;

    static bool is_chinese(uint32_t c) {  // BERT's ranges, with llama.cpp's (and HF's) 0x2B920 start
        return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
               (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
               (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
    }

    void end_word() {
        if (!words_.back().empty()) words_.emplace_back();
    }

    void split_words(const std::string &text) {
        utf8_decode(text.data(), text.size(), cpts_, nullptr);
        words_.assign(1, std::string());
        for (uint32_t cpt : cpts_) {
            if (strip_accents_) cpt = cp_nfd_first(cpt);
            const uint16_t f = cp_flags(cpt);
            if (f & CP_WHITESPACE) {
                end_word();
                continue;
            }
            if (cpt == 0 || cpt == 0xFFFD || (f & CP_CONTROL) || (strip_accents_ && (f & CP_MARK))) continue;
            const uint32_t c = lowercase_ ? cp_tolower(cpt) : cpt;
            if ((f & CP_PUNCTUATION) || (cpt < 0x7F && (f & CP_SYMBOL)) || is_chinese(cpt)) {
                end_word();
                utf8_append(words_.back(), c);  // a word of its own
                words_.emplace_back();
            } else {
                utf8_append(words_.back(), c);
            }
        }
        if (words_.back().empty()) words_.pop_back();
    }

    // Greedy longest match over the bytes of "▁" + word; any position without a match: unknown.
    std::vector<int32_t> cover(const std::string &word) const {
        const std::string w = "\xe2\x96\x81" + word;
        const size_t n = w.size();
        std::vector<int32_t> ids;
        for (size_t i = 0; i < n;) {
            size_t j = std::min(n, i + max_len_ + 1);
            int32_t id = -1;
            for (; j > i; j--)
                if ((id = ids_.find(w.data() + i, j - i)) >= 0) break;
            if (id < 0) return {unk_id_};
            ids.push_back(id);
            i = j;
        }
        return ids;
    }

    bool lowercase_, strip_accents_;
    int32_t unk_id_;
    StringIdMap ids_;
    size_t max_len_ = 0;
    std::mutex mutex_;
    std::unordered_map<std::string, std::vector<int32_t>> cache_;
    std::vector<uint32_t> cpts_;
    std::vector<std::string> words_;
};

}  // namespace gk
