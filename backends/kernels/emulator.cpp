// A CPU emulator for gpunet's block-synchronous CUDA kernels (see fused_sgd.cu).
//
// Each CUDA thread of a block runs as a coroutine (POSIX ucontext) with its own stack,
// so it keeps its private variables across barriers exactly as on a GPU. A barrier
// switches back to the scheduler, which runs every thread of the block up to its next
// barrier, in ascending or descending thread order (or a seeded shuffle), then starts
// the next phase. Shared memory is one buffer per block; blocks run one after another.
// A block whose threads do not all reach the same number of barriers (a barrier inside
// divergent code: undefined behaviour on a GPU) is reported as an error.
//
// Built by gpunet.backends.emulator with: g++ -O2 -shared -fPIC -DGPUNET_EMULATE
// -DGPUNET_REAL=float|double -DGPUNET_KERNEL_SOURCE="path/to/kernel.cu".

#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

static int emu_threads = 0, emu_block = 0, emu_current = 0;
static unsigned char* emu_shared = 0;
static ucontext_t emu_scheduler;
static ucontext_t* emu_contexts = 0;
static int* emu_finished = 0;
static int* emu_barriers = 0;  // barriers passed, per thread

static inline int gpunet_emu_thread() { return emu_current; }
static inline int gpunet_emu_threads() { return emu_threads; }
static inline int gpunet_emu_block() { return emu_block; }
static inline unsigned char* gpunet_emu_shared() { return emu_shared; }
static inline void gpunet_emu_barrier() {
    emu_barriers[emu_current] += 1;
    swapcontext(&emu_contexts[emu_current], &emu_scheduler);
}

#include GPUNET_KERNEL_SOURCE

// The kernel's arguments, stored for the coroutines' entry point.
struct SgdArgs {
    real* params; real* work; const real* X; const real* Y; const long long* perm;
    const double* eta; const double* lmbda; const int* sizes;
    int L, n, m, cost, params_in_shared, partial_capacity;
};
static SgdArgs emu_args;

static void emu_sgd_thread() {
    const SgdArgs& a = emu_args;
    gpunet_sgd_epoch(a.params, a.work, a.X, a.Y, a.perm, a.eta, a.lmbda, a.sizes,
                     a.L, a.n, a.m, a.cost, a.params_in_shared, a.partial_capacity);
    emu_finished[emu_current] = 1;
}

// Runs `entry` as `threads` coroutines per block for `blocks` blocks. `order`:
// 0 ascending, 1 descending, 2 + seed: a fresh shuffle of the threads every phase.
// Returns 0, or -1 for a divergent barrier, -2 when out of memory.
static int emu_launch(void (*entry)(), int blocks, int threads, long long shared_bytes,
                      int order) {
    const size_t stack_size = 64 * 1024;
    emu_threads = threads;
    emu_shared = (unsigned char*)calloc((size_t)shared_bytes + 16, 1);
    emu_contexts = (ucontext_t*)calloc(threads, sizeof(ucontext_t));
    emu_finished = (int*)calloc(threads, sizeof(int));
    emu_barriers = (int*)calloc(threads, sizeof(int));
    int* sequence = (int*)calloc(threads, sizeof(int));
    char* stacks = (char*)malloc(stack_size * threads);
    int status = 0;
    unsigned long long rng = 0x9E3779B97F4A7C15ull * (unsigned long long)(order + 1);
    if (!emu_shared || !emu_contexts || !emu_finished || !emu_barriers || !sequence || !stacks)
        status = -2;
    for (int b = 0; b < blocks && status == 0; ++b) {
        emu_block = b;
        memset(emu_shared, 0xFF, (size_t)shared_bytes);  // garbage, as on a GPU
        for (int t = 0; t < threads; ++t) {
            emu_finished[t] = 0;
            emu_barriers[t] = 0;
            getcontext(&emu_contexts[t]);
            emu_contexts[t].uc_stack.ss_sp = stacks + stack_size * t;
            emu_contexts[t].uc_stack.ss_size = stack_size;
            emu_contexts[t].uc_link = &emu_scheduler;
            makecontext(&emu_contexts[t], entry, 0);
        }
        for (;;) {
            for (int i = 0; i < threads; ++i) sequence[i] = order == 1 ? threads - 1 - i : i;
            if (order >= 2) {
                for (int i = threads - 1; i > 0; --i) {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                    int j = (int)(rng % (unsigned long long)(i + 1));
                    int tmp = sequence[i]; sequence[i] = sequence[j]; sequence[j] = tmp;
                }
            }
            for (int i = 0; i < threads; ++i) {
                emu_current = sequence[i];
                if (!emu_finished[emu_current])
                    swapcontext(&emu_scheduler, &emu_contexts[emu_current]);
            }
            int done = 0;
            for (int t = 0; t < threads; ++t) done += emu_finished[t];
            if (done == threads) break;
            // Every thread must have passed the same number of barriers.
            for (int t = 1; t < threads; ++t)
                if (emu_barriers[t] != emu_barriers[0] || emu_finished[t] != emu_finished[0])
                    status = -1;
            if (status) break;
        }
        for (int t = 1; t < threads && status == 0; ++t)
            if (emu_barriers[t] != emu_barriers[0]) status = -1;
    }
    free(stacks); free(sequence); free(emu_barriers); free(emu_finished);
    free(emu_contexts); free(emu_shared);
    emu_shared = 0; emu_contexts = 0; emu_finished = 0; emu_barriers = 0;
    return status;
}

extern "C" int gpunet_emulate_sgd_epoch(
    real* params, real* work, const real* X, const real* Y, const long long* perm,
    const double* eta, const double* lmbda, const int* sizes, int L, int n, int m,
    int cost, int params_in_shared, int partial_capacity,
    int blocks, int threads, long long shared_bytes, int order)
{
    emu_args = SgdArgs{params, work, X, Y, perm, eta, lmbda, sizes, L, n, m, cost,
                       params_in_shared, partial_capacity};
    return emu_launch(emu_sgd_thread, blocks, threads, shared_bytes, order);
}
