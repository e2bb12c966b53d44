// A CPU emulator for gpunet's block-synchronous CUDA kernels (see fused_sgd.cu).
//
// Each CUDA thread of a block runs as a coroutine (POSIX ucontext) with its own stack,
// so it keeps its private variables across barriers exactly as on a GPU. A barrier
// switches back to the scheduler, which runs every thread of the block up to its next
// barrier, in ascending or descending thread order (or a seeded shuffle), then starts
// the next phase. Blocks run one after another. A block whose threads do not all reach
// the same number of barriers (a barrier inside divergent code: undefined behaviour on
// a GPU) is reported as an error.
//
// Shared memory is exactly the bytes the launch asks for, no slack, filled with 0xFF
// bytes (NaN) at the start of every block, and fenced:
//   [guard page][canary bytes][shared memory ........][guard page]
// The buffer ends where an inaccessible page begins, so reading or writing even one
// element past its end faults; the fault is caught (SIGSEGV/SIGBUS handler, installed
// for the launch only) and the launch returns an error naming the offset. Before the
// buffer, the rest of its first page holds canary bytes, checked after every phase (a
// write there is an underrun), and a guard page lies before those.
//
// Arithmetic: the host compiler's by default. gpunet.backends.fused_sgd builds a
// "GPU arithmetic" variant as well, with fused multiply-adds contracted as nvcc and
// NVRTC do (-mfma -ffp-contract=fast) and, when the launch asks for it, float32
// denormals flushed to zero (FTZ and DAZ in MXCSR / FPCR for the launch), as CuPy's
// -ftz=true does on the GPU.
//
// Built by gpunet.backends.fused_sgd with: g++ -O2 -shared -fPIC -DGPUNET_EMULATE
// -DGPUNET_REAL=float|double -DGPUNET_KERNEL_SOURCE="path/to/kernel.cu" [GPU flags].

#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

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

// ------------------------------------------------------------------ fenced shared memory
static const unsigned char CANARY = 0xA5;
static unsigned char* emu_region = 0;   // guard page, canary + buffer pages, guard page
static size_t emu_region_size = 0;
static size_t emu_canary_bytes = 0;     // between the first guard page and the buffer
static long long emu_fault_offset = 0;  // of the last caught access, from the buffer's start
static long long emu_high_water = 0;    // bytes up to the last one a launch wrote
static sigjmp_buf emu_fault_jump;
static struct sigaction emu_old_segv, emu_old_bus;

static int fence_allocate(long long shared_bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t pages = ((size_t)shared_bytes + page - 1) / page;
    emu_region_size = (pages + 2) * page;
    void* region = mmap(0, emu_region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (region == MAP_FAILED) { emu_region = 0; return -1; }
    emu_region = (unsigned char*)region;
    if (mprotect(emu_region, page, PROT_NONE) != 0
        || mprotect(emu_region + (pages + 1) * page, page, PROT_NONE) != 0)
        return -1;
    emu_shared = emu_region + (pages + 1) * page - (size_t)shared_bytes;
    emu_canary_bytes = (size_t)(emu_shared - (emu_region + page));
    return 0;
}

static void fence_reset(long long shared_bytes) {
    memset(emu_shared - emu_canary_bytes, CANARY, emu_canary_bytes);
    memset(emu_shared, 0xFF, (size_t)shared_bytes);  // garbage (NaN), as on a GPU
}

static int canary_intact() {
    const unsigned char* c = emu_shared - emu_canary_bytes;
    for (size_t i = 0; i < emu_canary_bytes; ++i)
        if (c[i] != CANARY) { emu_fault_offset = -(long long)(emu_canary_bytes - i); return 0; }
    return 1;
}

static void note_high_water(long long shared_bytes) {
    long long end = shared_bytes;
    while (end > 0 && emu_shared[end - 1] == 0xFF) --end;
    if (end > emu_high_water) emu_high_water = end;
}

static void fence_free() {
    if (emu_region) munmap(emu_region, emu_region_size);
    emu_region = 0; emu_shared = 0;
}

// A fault inside the fenced region is the kernel's: back to the launch, which reports
// it. Any other fault is not ours: restore the previous handlers and return, so that
// the access faults again and they (Python's faulthandler, the default) handle it.
static void on_fault(int, siginfo_t* info, void*) {
    unsigned char* address = (unsigned char*)info->si_addr;
    if (emu_region && address >= emu_region && address < emu_region + emu_region_size) {
        emu_fault_offset = (long long)(address - emu_shared);
        siglongjmp(emu_fault_jump, 1);
    }
    sigaction(SIGSEGV, &emu_old_segv, 0);
    sigaction(SIGBUS, &emu_old_bus, 0);
}

// ------------------------------------------------------------------ floating point
struct FloatMode {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int csr;
    explicit FloatMode(int flush) : csr(_mm_getcsr()) {
        if (flush) _mm_setcsr(csr | 0x8040);  // FTZ (bit 15) and DAZ (bit 6)
    }
    ~FloatMode() { _mm_setcsr(csr); }
#elif defined(__aarch64__)
    unsigned long long fpcr;
    explicit FloatMode(int flush) {
        __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
        if (flush) {
            unsigned long long flushing = fpcr | (1ull << 24);  // FZ
            __asm__ volatile("msr fpcr, %0" : : "r"(flushing));
        }
    }
    ~FloatMode() { __asm__ volatile("msr fpcr, %0" : : "r"(fpcr)); }
#else
    explicit FloatMode(int) {}
#endif
};

// What this build's arithmetic does, under the launch's flush setting: out[0] is
// a * a - c for a = 1 + 2^-12, c = 1 + 2^-11 (2^-24 when the multiply-add is fused,
// 0 when a * a is rounded first); out[1] is 2^-100 * 2^-30 (0 when results are flushed);
// out[2] is (a denormal 2^-140) * 1 (0 when denormal inputs are read as zero).
extern "C" void gpunet_emulate_arithmetic(int flush, float* out) {
    FloatMode mode(flush);
    volatile float a = 1.0f + 0x1p-12f, c = 1.0f + 0x1p-11f;
    volatile float tiny = 0x1p-100f, small = 0x1p-30f, denormal = 0x1p-140f, one = 1.0f;
    float x = a, y = c;
    out[0] = x * x - y;
    out[1] = tiny * small;
    out[2] = denormal * one;
}

// ------------------------------------------------------------------ the launch
// The kernel's arguments, stored for the coroutines' entry point.
struct SgdArgs {
    real* params; real* work; const real* X; const real* Y; const long long* perm;
    const double* eta; const double* lmbda; const int* sizes;
    real* velocity; const double* momentum; const double* l1;
    const unsigned long long* drop_key; const unsigned long long* drop_threshold; int epoch;
    int L, n, m, cost, params_in_shared, partial_capacity, has_velocity;
};
static SgdArgs emu_args;

static void emu_sgd_thread() {
    const SgdArgs& a = emu_args;
    gpunet_sgd_epoch(a.params, a.work, a.X, a.Y, a.perm, a.eta, a.lmbda, a.sizes,
                     a.velocity, a.momentum, a.l1,
#if GPUNET_DROPOUT
                     a.drop_key, a.drop_threshold, a.epoch,  // the dropout build's
#endif
                     a.L, a.n, a.m, a.cost, a.params_in_shared, a.partial_capacity,
                     a.has_velocity);
    emu_finished[emu_current] = 1;
}

// Runs the blocks; the caller has set up everything and installed the fault handler.
// Returns 0, -1 for a divergent barrier, -4 for a write before the buffer's start.
static int emu_run(void (*entry)(), int blocks, int threads, long long shared_bytes,
                   int order, char* stacks, size_t stack_size, int* sequence) {
    int status = 0;
    unsigned long long rng = 0x9E3779B97F4A7C15ull * (unsigned long long)(order + 1);
    for (int b = 0; b < blocks && status == 0; ++b) {
        emu_block = b;
        fence_reset(shared_bytes);
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
            if (!canary_intact()) { status = -4; break; }
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
        if (status == 0) note_high_water(shared_bytes);
    }
    return status;
}

// Runs `entry` as `threads` coroutines per block for `blocks` blocks. `order`:
// 0 ascending, 1 descending, 2 + seed: a fresh shuffle of the threads every phase.
// `flush`: float denormals flushed to zero for the launch (FTZ and DAZ).
// Returns 0, or -1 for a divergent barrier, -2 when out of memory, -3 for an access
// outside the shared buffer (gpunet_emulate_fault_offset says where), -4 for a write
// just before its start.
static int emu_launch(void (*entry)(), int blocks, int threads, long long shared_bytes,
                      int order, int flush) {
    const size_t stack_size = 64 * 1024;
    emu_threads = threads;
    emu_high_water = 0;
    emu_contexts = (ucontext_t*)calloc(threads, sizeof(ucontext_t));
    emu_finished = (int*)calloc(threads, sizeof(int));
    emu_barriers = (int*)calloc(threads, sizeof(int));
    int* sequence = (int*)calloc(threads, sizeof(int));
    char* stacks = (char*)malloc(stack_size * threads);
    volatile int status = 0;
    if (fence_allocate(shared_bytes) != 0 || !emu_contexts || !emu_finished || !emu_barriers
        || !sequence || !stacks)
        status = -2;
    if (status == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_fault;
        action.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &emu_old_segv);
        sigaction(SIGBUS, &action, &emu_old_bus);
        FloatMode mode(flush);
        if (sigsetjmp(emu_fault_jump, 1) == 0)
            status = emu_run(entry, blocks, threads, shared_bytes, order, stacks, stack_size,
                             sequence);
        else
            status = -3;  // back from on_fault: the kernel touched a guard page
        sigaction(SIGSEGV, &emu_old_segv, 0);
        sigaction(SIGBUS, &emu_old_bus, 0);
    }
    fence_free();
    free(stacks); free(sequence); free(emu_barriers); free(emu_finished);
    free(emu_contexts);
    emu_contexts = 0; emu_finished = 0; emu_barriers = 0;
    return status;
}

extern "C" long long gpunet_emulate_fault_offset() { return emu_fault_offset; }

// The fence alone, for its tests: one thread of one block reads or writes byte
// `offset` of a fenced `shared_bytes` buffer. Returns what a launch would.
static long long probe_offset = 0;
static int probe_write = 0;
static void emu_probe_thread() {
    volatile unsigned char* byte = emu_shared + probe_offset;
    if (probe_write) *byte = 1; else (void)*byte;
    emu_finished[emu_current] = 1;
}

extern "C" int gpunet_emulate_fence_probe(long long shared_bytes, long long offset, int write) {
    probe_offset = offset;
    probe_write = write;
    return emu_launch(emu_probe_thread, 1, 1, shared_bytes, 0, 0);
}
extern "C" long long gpunet_emulate_high_water() { return emu_high_water; }

extern "C" int gpunet_emulate_sgd_epoch(
    real* params, real* work, const real* X, const real* Y, const long long* perm,
    const double* eta, const double* lmbda, const int* sizes, real* velocity,
    const double* momentum, const double* l1, int L, int n, int m,
    int cost, int params_in_shared, int partial_capacity, int has_velocity,
    int blocks, int threads, long long shared_bytes, int order, int flush)
{
    emu_args = SgdArgs{params, work, X, Y, perm, eta, lmbda, sizes, velocity, momentum, l1,
                       0, 0, 0,
                       L, n, m, cost, params_in_shared, partial_capacity, has_velocity};
    return emu_launch(emu_sgd_thread, blocks, threads, shared_bytes, order, flush);
}

// The dropout build's launch (-DGPUNET_DROPOUT=1): the same, with each network's Philox
// key and threshold and the epoch the launch trains.
extern "C" int gpunet_emulate_sgd_epoch_dropout(
    real* params, real* work, const real* X, const real* Y, const long long* perm,
    const double* eta, const double* lmbda, const int* sizes, real* velocity,
    const double* momentum, const double* l1, const unsigned long long* drop_key,
    const unsigned long long* drop_threshold, int epoch, int L, int n, int m,
    int cost, int params_in_shared, int partial_capacity, int has_velocity,
    int blocks, int threads, long long shared_bytes, int order, int flush)
{
    emu_args = SgdArgs{params, work, X, Y, perm, eta, lmbda, sizes, velocity, momentum, l1,
                       drop_key, drop_threshold, epoch,
                       L, n, m, cost, params_in_shared, partial_capacity, has_velocity};
    return emu_launch(emu_sgd_thread, blocks, threads, shared_bytes, order, flush);
}
