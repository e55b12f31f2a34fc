// Stage flags (-DFLAGS forms; gpt4all_core/backend/vulkan/flags.py): a decode step's dispatches
// ordered by counters instead of pipeline barriers, so that a workgroup can load its weights
// while the stage before it is still finishing, rather than every workgroup of the next product
// starting only after the last of the previous one has drained.
//
// Each stage (the dispatches between two of what would be barriers) counts its finished
// workgroups in one word of the parameter buffer (binding 0, zeroed by the host before each
// pass); the next stage's workgroups wait until that word holds all of them (WAIT_FOR) before
// they read what the stage wrote, or write what it read. Every workgroup of a stage waits, so the
// order is transitive as with barriers. Data passed this way is read and written through
// coherent declarations. A wait is bounded: past 4M polls it counts itself in word
// TIMEOUT_AT (the host raises an error) and goes on, so a device that does not run a later
// dispatch's workgroups beside an earlier one's stalls for a while instead of hanging.
#ifndef GK_FLAGS_GLSL
#define GK_FLAGS_GLSL

// what a FLAGS form passes between stages is declared with this (nothing otherwise)
#define GK_PASSED coherent

layout(constant_id = 20) const uint WAIT_AT = 0;     // the word this dispatch waits on (0: none)
layout(constant_id = 21) const uint WAIT_FOR = 0;    // ... until it counts this many workgroups
layout(constant_id = 22) const uint SIGNAL_AT = 0;   // the word its finished workgroups go to (0: none)
layout(constant_id = 23) const uint TIMEOUT_AT = 0;  // the word counting waits that gave up
layout(set = 0, binding = 0) coherent volatile buffer StageFlags { uint flag_words[]; };

// polls before a wait gives up: SPIN_ROUNDS rounds of SPIN_POLLS (nested loops: lavapipe cuts a
// single loop off after 65535 iterations)
const uint SPIN_POLLS = 16384u;
const uint SPIN_ROUNDS = 256u;

// In uniform control flow: the workgroup waits until the stage before it is done.
void await_stage() {
    if (WAIT_AT != 0u) {
        if (gl_LocalInvocationIndex == 0u) {
            bool done = false;
            for (uint round = 0u; round < SPIN_ROUNDS && !done; ++round) {
                for (uint i = 0u; i < SPIN_POLLS; ++i) {
                    if (flag_words[WAIT_AT] >= WAIT_FOR) {
                        done = true;
                        break;
                    }
                }
            }
            if (!done) {
                atomicAdd(flag_words[TIMEOUT_AT], 1u);
            }
        }
        barrier();
        memoryBarrierBuffer();
    }
}

// In uniform control flow, after the workgroup's last write: counts it done.
void signal_stage() {
    if (SIGNAL_AT != 0u) {
        memoryBarrierBuffer();  // its writes reach device memory before it is counted
        barrier();
        if (gl_LocalInvocationIndex == 0u) {
            atomicAdd(flag_words[SIGNAL_AT], 1u);
        }
    }
}

#endif
