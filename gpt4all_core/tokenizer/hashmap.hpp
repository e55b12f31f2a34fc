// Small open-addressing hash maps for the tokenizers' hot lookups: token text -> id without building
// a std::string per probe (the merge loops look up every candidate pair), and (id, id) -> rank.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace gk {

inline uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9E3779B97F4A7C15ull);  // FNV-1a, seeded by the length
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

inline size_t table_size_for(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;  // at most half full: short probe chains
    return cap;
}

// Token text -> id; inserting a text again replaces its id (llama.cpp: the last duplicate wins).
class StringIdMap {
  public:
    void reserve(size_t n) { slots_.assign(table_size_for(n), Slot{}); }

    void insert(const char *s, size_t n, int32_t id) {
        if ((count_ + 1) * 2 > slots_.size()) grow();
        Slot &slot = find_slot(s, n);
        if (slot.id < 0) {
            slot = Slot{(uint32_t)pool_.size(), (uint32_t)n, id};
            pool_.append(s, n);
            count_++;
        } else {
            slot.id = id;
        }
    }

    int32_t find(const char *s, size_t n) const {
        if (slots_.empty()) return -1;
        return const_cast<StringIdMap *>(this)->find_slot(s, n).id;
    }
    int32_t find(const std::string &s) const { return find(s.data(), s.size()); }

  private:
    struct Slot {
        uint32_t offset = 0, len = 0;
        int32_t id = -1;
    };

    Slot &find_slot(const char *s, size_t n) {
        const size_t mask = slots_.size() - 1;
        for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
            Slot &slot = slots_[i];
            if (slot.id < 0 || (slot.len == n && std::memcmp(pool_.data() + slot.offset, s, n) == 0)) return slot;
        }
    }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
        for (const Slot &o : old)
            if (o.id >= 0) find_slot(pool_.data() + o.offset, o.len) = o;
    }

    std::vector<Slot> slots_;
    std::string pool_;
    size_t count_ = 0;
};

// (left id, right id) -> merge rank; inserting a pair again keeps the first rank (llama.cpp's emplace).
class PairRankMap {
  public:
    void reserve(size_t n) { slots_.assign(table_size_for(n), Slot{}); }

    void insert(int32_t a, int32_t b, int32_t rank) {
        if ((count_ + 1) * 2 > slots_.size()) grow();
        Slot &slot = find_slot(key(a, b));
        if (slot.rank < 0) {
            slot = Slot{key(a, b), rank};
            count_++;
        }
    }

    int32_t find(int32_t a, int32_t b) const {
        if (slots_.empty()) return -1;
        return const_cast<PairRankMap *>(this)->find_slot(key(a, b)).rank;
    }

  private:
    struct Slot {
        uint64_t key = 0;
        int32_t rank = -1;
    };
    static uint64_t key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

    Slot &find_slot(uint64_t k) {
        const size_t mask = slots_.size() - 1;
        uint64_t h = k * 0x9E3779B97F4A7C15ull;
        for (size_t i = (h ^ (h >> 32)) & mask;; i = (i + 1) & mask) {
            Slot &slot = slots_[i];
            if (slot.rank < 0 || slot.key == k) return slot;
        }
    }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
        for (const Slot &o : old)
            if (o.rank >= 0) find_slot(o.key) = o;
    }

    std::vector<Slot> slots_;
    size_t count_ = 0;
};

}  // namespace gk
