// gpunet's fused training kernel: one launch trains K networks for a whole epoch of
// mini-batch SGD, one thread block per network.
//
// The algorithm is the book's (Nielsen, "Neural Networks and Deep Learning"):
//   feedforward     z^l = w^l a^{l-1} + b^l,  a^l = sigma(z^l)          (ch. 1, eq. 25)
//   output error    delta^L = (a^L - y) sigma'(z^L)  (quadratic cost)    (ch. 2, BP1)
//                   delta^L = a^L - y                (cross-entropy)     (ch. 3, eq. 66)
//                   delta^L = a^L - y                (log-likelihood, a^L the softmax of
//                                                     z^L: ch. 3, eq. 78 and 84)
//   backpropagate   delta^l = ((w^{l+1})^T delta^{l+1}) sigma'(z^l)      (ch. 2, BP2)
//   update          w -> (1 - eta lambda / n) w - (eta / m) sum_x delta^l (a^{l-1})^T
//                   b -> b - (eta / m) sum_x delta^l                     (ch. 3, eq. 93, 94)
//   with L1 and momentum (a network's l1 or the launch's velocities: gpunet_extension)
//                   G  = (eta / m) sum_x delta^l (a^{l-1})^T + (eta l1 / n) sgn(w)  (eq. 96, 97)
//                   v -> mu v - G - (eta lambda / n) w                   (eq. 107)
//                   w -> (1 - eta lambda / n) w - G + mu v  (= w + v')   (eq. 108)
//                   (biases: G = (eta / m) sum_x delta^l, no L1, no decay)
// for every mini-batch of the epoch's permutation, the last one possibly smaller. sigma
// is, in the hidden layers, the activation the kernel is compiled for (GPUNET_ACTIVATION,
// below: the sigmoid, tanh or ReLU), in the output layer the sigmoid, or the softmax in
// the log-likelihood cost's build (GPUNET_SOFTMAX); sigma' taken from its output a; the
// cost is the launch's `cost` argument (gpunet_output_error). The order of operations in each formula follows gpunet's NumPy
// engine (sums first, then the bias; (a - y) a (1 - a); w decay - g scale), so a float64
// run follows the NumPy run's trajectory to rounding.
//
// Block-synchronous phases. The kernel is a sequence of phases; in each, a thread
// works on the indices idx = tid, tid + T, ... of that phase's outputs, reads only
// what earlier phases wrote, and a barrier SYNC(id) ends the phase. Written this way,
// the same source compiles with NVRTC (threadIdx, __syncthreads) and, with
// -DGPUNET_EMULATE, with the system C++ compiler, where an emulator runs each
// thread as a coroutine and each barrier as a switch back to the scheduler, in
// ascending or descending thread order (backends/kernels/emulator.cpp): a missing
// barrier, or a read of another thread's result inside one phase, changes the
// numbers there. -DGPUNET_DROP_BARRIER=id removes one barrier, for the tests that
// prove each one is needed.
//
// Dropout (ch. 3, "Dropout"), in the -DGPUNET_DROPOUT=1 build only (every other build is
// the code it was: the dropout build's arguments and phases are preprocessed away): each
// step first draws its masks, one per hidden neuron for the whole mini-batch, into shared
// memory after the partial sums, by Philox-4x64-10 (gpunet_keep, below; the formula of
// gpunet/model/dropout.py: key = the network's seed, counter = (unit, hidden layer, step,
// epoch), kept where the first word >= the network's threshold floor(p 2^64)). A removed
// neuron's activation is 0 (times its mask, after sigma) and so is its error (times its
// mask, after sigma'), as in the NumPy engines: exact products by 1 or 0.
//
// Memory. The parameters arrive in gpunet's flat layout (every weight matrix w^l,
// (n_{l+1}, n_l) row-major, then every bias; see gpunet/model/parameters.py). For the epoch
// they are kept in a *working layout* with each weight matrix transposed, (n_l,
// n_{l+1}), so that the threads of a warp, which take neighbouring output neurons j,
// read neighbouring words. The working copy lives in shared memory when it fits
// (params_in_shared = 1; the book's [784, 30, 10] network in float32: 95 KB), else in
// the global buffer `work` (L2-resident for networks of a few MB). The mini-batch's
// input rows, desired outputs, activations, errors and partial sums always live in
// shared memory: m (n_in + n_out + 2 sum_{l>1} n_l) + partial_capacity reals.

#ifndef GPUNET_REAL
#error "compile with -DGPUNET_REAL=float or -DGPUNET_REAL=double"
#endif
typedef GPUNET_REAL real;
// GPUNET_REAL_IS_DOUBLE: 1 when GPUNET_REAL is double, else 0, for #if (code paths
// that only float64 takes, e.g. a pragma).
#define GPUNET_IS_double 1
#define GPUNET_CAT_(a, b) a##b
#define GPUNET_CAT(a, b) GPUNET_CAT_(a, b)
#define GPUNET_REAL_IS_DOUBLE GPUNET_CAT(GPUNET_IS_, GPUNET_REAL)

#ifdef GPUNET_EMULATE
#include <math.h>
#define KERNEL extern "C"
#define DEVICE static inline
#define RESTRICT
#define THREAD_ID gpunet_emu_thread()
#define NUM_THREADS gpunet_emu_threads()
#define BLOCK_ID gpunet_emu_block()
#define SHARED_MEMORY gpunet_emu_shared()
#define BARRIER() gpunet_emu_barrier()
#else
// At most GPUNET_MAX_THREADS threads per block (gpunet/engines/fused.py launches 256):
// ptxas then keeps registers x threads within the register file, so no build of this
// kernel, float64 included, can fail to launch for lack of registers.
#define KERNEL extern "C" __global__ __launch_bounds__(GPUNET_MAX_THREADS, 1)
#define DEVICE __device__ __forceinline__
#define RESTRICT __restrict__
#define THREAD_ID ((int)threadIdx.x)
#define NUM_THREADS ((int)blockDim.x)
#define BLOCK_ID ((int)blockIdx.x)
extern __shared__ double gpunet_shared_memory[];  // double: 8-byte alignment
#define SHARED_MEMORY ((unsigned char*)gpunet_shared_memory)
#define BARRIER() __syncthreads()
#endif

#ifndef GPUNET_MAX_THREADS
#define GPUNET_MAX_THREADS 256  // MAX_THREADS in backends/fused_sgd.py
#endif

#ifndef GPUNET_DROP_BARRIER
#define GPUNET_DROP_BARRIER 0
#endif
// A barrier with an id (1, 2, ...), so that a test can drop exactly one of them.
#define SYNC(id) do { if ((id) != GPUNET_DROP_BARRIER) BARRIER(); } while (0)

#define GPUNET_MAX_LAYERS 16  // weight matrices per network

DEVICE float gpunet_exp(float x) { return expf(x); }
DEVICE double gpunet_exp(double x) { return exp(x); }

DEVICE float gpunet_tanh(float x) { return tanhf(x); }
DEVICE double gpunet_tanh(double x) { return tanh(x); }

// The output layer's neuron, the sigmoid: sigma(z) = 1 / (1 + e^{-z}) (ch. 1, eq. 3);
// e^{-z} = inf for very negative z gives 0. sigma'(z) = sigma(z) (1 - sigma(z)) = a (1 - a).
DEVICE real gpunet_sigmoid(real z) { return (real)1 / ((real)1 + gpunet_exp(-z)); }
DEVICE real gpunet_sigmoid_prime_times(real x, real a) { x = x * a; return x * ((real)1 - a); }

// The hidden layers' activation: gpunet_activation(z) = sigma(z) and
// gpunet_activation_prime_times(x, a) = x sigma'(z) from the output a = sigma(z), for the
// activation whose kernel_id (gpunet/model/activations.py) the build names with
// -DGPUNET_ACTIVATION (0, the sigmoid, when not given).
#ifndef GPUNET_ACTIVATION
#define GPUNET_ACTIVATION 0
#endif
#if GPUNET_ACTIVATION == 0
// the sigmoid, as the output layer's: every layer computes the same function
#define gpunet_activation gpunet_sigmoid
#define gpunet_activation_prime_times gpunet_sigmoid_prime_times
#define GPUNET_HIDDEN_IS_OUTPUT 1  // every layer the sigmoid (with a sigmoid output)
#elif GPUNET_ACTIVATION == 1
// tanh (ch. 3, eq. 109): tanh'(z) = 1 - tanh^2(z) = 1 - a^2 (NumPy's order: a a, 1 - it, x times it)
DEVICE real gpunet_activation(real z) { return gpunet_tanh(z); }
DEVICE real gpunet_activation_prime_times(real x, real a) { const real s = a * a; return x * ((real)1 - s); }
#elif GPUNET_ACTIVATION == 2
// ReLU (ch. 3, eq. 112): max(0, z); sigma' = 1 where a > 0, else 0 (0 at z = 0)
DEVICE real gpunet_activation(real z) { return z > (real)0 ? z : (real)0; }
DEVICE real gpunet_activation_prime_times(real x, real a) { return a > (real)0 ? x : (real)0; }
#else
#error "GPUNET_ACTIVATION: no device functions for this activation's kernel_id"
#endif
// The output layer: the sigmoid, or with -DGPUNET_SOFTMAX=1 (the log-likelihood cost's
// build, its kernel_id 2) the softmax, computed from z row by row once the layer's z
// are all known (the phase after the feedforward). A layer's activation from z:
#ifndef GPUNET_SOFTMAX
#define GPUNET_SOFTMAX 0
#endif
#if GPUNET_SOFTMAX
#define GPUNET_LAYER_ACTIVATION(output, z) ((output) ? (z) : gpunet_activation(z))
#elif defined(GPUNET_HIDDEN_IS_OUTPUT)
#define GPUNET_LAYER_ACTIVATION(output, z) gpunet_sigmoid(z)
#else
#define GPUNET_LAYER_ACTIVATION(output, z) ((output) ? gpunet_sigmoid(z) : gpunet_activation(z))
#endif

#ifndef GPUNET_DROPOUT
#define GPUNET_DROPOUT 0
#endif
#if GPUNET_DROPOUT
// Philox-4x64-10 (Salmon et al. 2011; Random123's philox4x64_R, NumPy's Philox): the
// first 64-bit word of the block of counter (c0, c1, c2, c3) under key (k0, k1).
DEVICE unsigned long long gpunet_mulhi64(unsigned long long a, unsigned long long b) {
#ifdef GPUNET_EMULATE
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
#else
    return __umul64hi(a, b);
#endif
}

DEVICE unsigned long long gpunet_philox_word0(unsigned long long c0, unsigned long long c1,
                                              unsigned long long c2, unsigned long long c3,
                                              unsigned long long k0, unsigned long long k1) {
    for (int r = 0; r < 10; ++r) {
        if (r) { k0 += 0x9E3779B97F4A7C15ULL; k1 += 0xBB67AE8584CAA73BULL; }
        const unsigned long long hi0 = gpunet_mulhi64(0xD2E7470EE14C6C93ULL, c0);
        const unsigned long long lo0 = 0xD2E7470EE14C6C93ULL * c0;
        const unsigned long long hi1 = gpunet_mulhi64(0xCA5A826395121157ULL, c2);
        const unsigned long long lo1 = 0xCA5A826395121157ULL * c2;
        c0 = hi1 ^ c1 ^ k0; c1 = lo1; c2 = hi0 ^ c3 ^ k1; c3 = lo0;
    }
    return c0;
}

// 1 where hidden neuron `unit` of hidden layer `layer` is kept in step `step` of epoch
// `epoch`, else 0 (gpunet/model/dropout.py's keep).
DEVICE real gpunet_keep(const unsigned long long* key, unsigned long long threshold,
                        int unit, int layer, int step, int epoch) {
    const unsigned long long word = gpunet_philox_word0(
        (unsigned long long)unit, (unsigned long long)layer, (unsigned long long)step,
        (unsigned long long)epoch, key[0], key[1]);
    return word >= threshold ? (real)1 : (real)0;
}

// A layer's value times its neuron's mask where the layer is hidden.
DEVICE real gpunet_masked(real v, bool hidden, const real* mask, int j) {
    return hidden ? v * mask[j] : v;
}
#define GPUNET_DROP(hidden, v, mask, j) gpunet_masked(v, hidden, mask, j)
#else
#define GPUNET_DROP(hidden, v, mask, j) (v)
#endif

// The output error delta^L of one output, for the cost whose kernel_id
// (gpunet/model/costs.py) the launch passes: 0 the quadratic cost, (a - y) sigma'(z)
// (ch. 2, BP1); 1 the cross-entropy, a - y (sigma' cancels: ch. 3, eq. 66); 2 the
// log-likelihood of a softmax output, a - y (ch. 3, eq. 84).
DEVICE real gpunet_output_error(int cost, real a, real y) {
    const real e = a - y;
    return cost == 0 ? gpunet_sigmoid_prime_times(e, a) : e;
}

// Vector loads: VW reals (16 bytes) at once where rows and offsets allow it, pairs
// (two neighbouring outputs' weights or errors) where the width N is even. The
// emulator copies element by element (no alignment needed on the CPU); alignment is
// judged by offsets from the shared-memory base, so the emulator takes the same paths.
#define VW ((int)(16 / sizeof(real)))
struct alignas(16) gpunet_vec { real v[16 / sizeof(real)]; };
struct alignas(2 * sizeof(real)) gpunet_pair { real v[2]; };

template <int V> DEVICE void load_reals(real* d, const real* s) {
#ifdef GPUNET_EMULATE
    for (int i = 0; i < V; ++i) d[i] = s[i];
#else
    if (V % VW == 0) {  // V / VW vectors
        for (int g = 0; g < V; g += VW) {
            const gpunet_vec t = *(const gpunet_vec*)(s + g);
            for (int i = 0; i < VW; ++i) d[g + i] = t.v[i];
        }
    } else if (V == 2) {
        const gpunet_pair t = *(const gpunet_pair*)s;
        d[0] = t.v[0]; d[1] = t.v[1];
    } else {
        for (int i = 0; i < V; ++i) d[i] = s[i];
    }
#endif
}

DEVICE void store_pair(real* d, real a, real b) {
#ifdef GPUNET_EMULATE
    d[0] = a; d[1] = b;
#else
    gpunet_pair t; t.v[0] = a; t.v[1] = b;
    *(gpunet_pair*)d = t;
#endif
}

DEVICE void store_vec(real* d, const real* v) {
#ifdef GPUNET_EMULATE
    for (int e = 0; e < VW; ++e) d[e] = v[e];
#else
    gpunet_vec t;
    for (int e = 0; e < VW; ++e) t.v[e] = v[e];
    *(gpunet_vec*)d = t;
#endif
}

// Whether q (in shared memory, or in global memory when params are there) is aligned
// to `bytes`: its offset from the block's shared memory, or its address.
DEVICE bool aligned(const real* q, int bytes, bool in_shared) {
    const unsigned char* base = in_shared ? SHARED_MEMORY : (const unsigned char*)0;
    return (unsigned long long)((const unsigned char*)q - base) % (unsigned)bytes == 0;
}

// Register tiles. Feedforward: a thread computes R examples x 2 outputs of one slice of
// the input sum, R the largest of ROW_TILES dividing the mini-batch's k (k = 10: one
// tile of all 10 rows, no per-row predicates); each value read from shared memory then
// serves several multiply-adds (shared-memory traffic, not arithmetic, bounds a block
// that trains a small network). Update: V x 2 weights.
//
// The tiles a build holds: the launcher (backends/fused_sgd.py, CudaSgdEpoch) compiles
// one build per mini-batch size's tile, -DGPUNET_ROW_TILE=row_tile(m): R for the
// mini-batches whose k it divides (every full one), 1 for a smaller last one. The rows
// of a tile are independent sums, so the tile changes no number, only the speed; a
// build of two instances instead of seven compiles in a fraction of the time and
// carries no dispatch to tiles it never runs. Without the macro (the emulator, CI's
// compile checks of the whole source) every tile is built and chosen at run time.
#define GPUNET_ALL_ROW_TILES(X) X(16) X(12) X(10) X(8) X(4) X(2) X(1)
#if !defined(GPUNET_ROW_TILE)
#define ROW_TILES(X) GPUNET_ALL_ROW_TILES(X)
#elif GPUNET_ROW_TILE == 1
#define ROW_TILES(X) X(1)
#else
#define ROW_TILES(X) X(GPUNET_ROW_TILE) X(1)
#endif
DEVICE int row_tile(int k) {
#define GPUNET_DIVIDES(r) if (k % r == 0) return r;
    ROW_TILES(GPUNET_DIVIDES)
#undef GPUNET_DIVIDES
    return 1;
}

// The next mini-batch's rows are loaded into registers while the current one trains
// (plain loads issued a whole step before their values are stored to shared memory:
// the permutation's and the rows' memory latency is hidden behind a step). PREFETCH:
// 16-byte vectors a thread holds (the book's 10 rows of 784: 7.7 a thread in float32,
// 15.3 in float64); rows beyond that are gathered directly.
#define PREFETCH ((int)(sizeof(real) == 4 ? 8 : 16))

// Where thread tid's prefetched values sit in a mini-batch's rows: its vectors v = tid +
// i T (q = n_in / VW vectors a row) at row v / q, vector v % q, carried from one i to
// the next by adding T's quotient and remainder: two divisions a step instead of one a
// vector (recomputed each step rather than held through the epoch: the float64 builds
// have no registers to spare).
DEVICE void fetch_rows(real (*x_regs)[16 / sizeof(real)], real* y_reg,
                       const real* RESTRICT X, const real* RESTRICT Y,
                       const long long* RESTRICT order, int s, int k, int n_in, int n_out,
                       int tid, int T) {
    const int q = n_in / VW;  // vectors per row
    int r = tid / q, col = tid - r * q;
    const int rows_per_T = T / q, cols_per_T = T - rows_per_T * q;
#pragma unroll
    for (int i = 0; i < PREFETCH; ++i) {
        if (r < k)  // v = r q + col < k q
            load_reals<VW>(x_regs[i], X + order[s + r] * n_in + col * VW);
        r += rows_per_T; col += cols_per_T;
        if (col >= q) { col -= q; ++r; }
    }
    if (tid < k * n_out) {  // desired output tid: row tid / n_out
        const int y_row = tid / n_out;
        *y_reg = Y[order[s + y_row] * n_out + tid - y_row * n_out];
    }
}

DEVICE void place_rows(real* RESTRICT xs, real* RESTRICT ys,
                       const real (*x_regs)[16 / sizeof(real)], real y_reg, int k, int n_in,
                       int n_out, int tid, int T) {
    const int q = n_in / VW;
#pragma unroll
    for (int i = 0; i < PREFETCH; ++i) {
        const int v = tid + i * T;
        if (v < k * q) store_vec(xs + v * VW, x_regs[i]);
    }
    if (tid < k * n_out) ys[tid] = y_reg;
}

// A thread's walk over work items item = tid, tid + T, ... of a grid of rows x `width`
// columns: row item / width and column item % width, carried from one item to the next
// by adding T's quotient and remainder, so that no item pays for a division. Set up
// once per layer by the caller (two divisions), outside the template instances.
struct gpunet_walk { int row, col, rows_per_T, cols_per_T, width; };

DEVICE gpunet_walk walk_from(int tid, int T, int width) {
    gpunet_walk w;
    w.width = width;
    w.row = tid / width; w.col = tid - w.row * width;
    w.rows_per_T = T / width; w.cols_per_T = T - w.rows_per_T * width;
    return w;
}

DEVICE void advance(gpunet_walk& w) {
    w.row += w.rows_per_T; w.col += w.cols_per_T;
    if (w.col >= w.width) { w.col -= w.width; ++w.row; }
}

// How many slices the sum over a layer's C inputs is cut into: at most one work item
// (slice x output pair) per thread (no thread does two while others idle), slices of
// at least 8 inputs, and no more partial sums (slices x k x N) than the buffer holds.
DEVICE int split_count(int n_in, int tiles, int outputs, int T, int capacity) {
    int s = T / tiles;
    int most = n_in / 8;
    if (s > most) s = most;
    if (s > capacity / outputs) s = capacity / outputs;
    return s < 1 ? 1 : s;
}

// What a layer's phases need to split their work, set up once per epoch (for full
// mini-batches and for a smaller last one) instead of in every step: a step's layer
// loops then pay a few local-memory loads, not the six integer divisions of
// split_count, walk_from and the slices' sizes (~120 instructions a layer).
struct gpunet_layer {
    gpunet_walk items;     // feedforward and update items: (slice or inputs, output pair)
    int S, per, extra;     // feedforward: S slices of per or per + 1 units (see ff_sums)
    int j0, j_per_T;       // activation: output j = idx % N of idx = tid, tid + T, ...
    int ff_vector, up_vector;  // whether the vector paths' conditions hold
};

// Feedforward's partial sums: partial[slice][r][j] = sum over the slice's inputs c
// (ascending) of a_prev[r][c] wT[c][j], for r < k, j < N. V: inputs per iteration (FFW on the
// vector path, where C % FFW == 0, N is even and the rows are aligned; else 1).
// Slice s covers the units (of V inputs) [units s / S, units (s + 1) / S); with units =
// per S + extra that is per s + extra s / S, in 32 bits (extra s < S^2). The items
// (slice, output pair) are walked by `walk` (width: the output pairs).
template <int R, int V>
DEVICE void ff_sums(real* RESTRICT partial, const real* RESTRICT a_prev,
                    const real* RESTRICT wT, int C, int N, int ld, int k, int S, int per,
                    int extra, gpunet_walk walk) {
    const int outputs = k * N;
    for (; walk.row < S; advance(walk)) {  // @model ff.item ff{l}.sum in=ff trips=rounds(ff_slices(l)*cdiv(sizes[l+1],2),w,T)
        const int slice = walk.row, j0 = walk.col * 2;
        const int c0 = V * (per * slice + extra * slice / S);
        const int c1 = V * (per * (slice + 1) + extra * (slice + 1) / S);
        // one tile per full mini-batch mostly (k = R): not unrolled (copies of the
        // tile's code for k > R would only lengthen the item's code)
#pragma unroll 1
        for (int r0 = 0; r0 < k; r0 += R) {  // @model ff.rows ff{l}.sum trips=k//row_tile(k)
            const real* a = a_prev + r0 * C;
            real acc[R][2];
            for (int t = 0; t < R; ++t) acc[t][0] = acc[t][1] = 0;
            // float64 (whose weights live in L2 for the book's network): two iterations'
            // loads in flight together; not at R = 16, where sm_80's registers run out.
            // float32: no pragma, the compiler's own choice (a pragma of 1 there would
            // stop it unrolling the small layers' scalar loop).
#if GPUNET_REAL_IS_DOUBLE
#pragma unroll(R <= 12 ? 2 : 1)
#endif
            for (int c = c0; c < c1; c += V) {  // @model ff.inner ff{l}.sum trips=ff_units(l) sig=fma:2*row_tile(k)*ff_width(l);shared:row_tile(k)*(ff_width(l)//VW+(ff_width(l)==1))
                real x[R][V], w[V][2];
                for (int t = 0; t < R; ++t) load_reals<V>(x[t], a + t * C + c);
                for (int v = 0; v < V; ++v) {
                    if (V > 1) {
                        load_reals<2>(w[v], wT + (c + v) * ld + j0);
                    } else {
                        w[v][0] = wT[c * ld + j0];
                        w[v][1] = j0 + 1 < N ? wT[c * ld + j0 + 1] : (real)0;
                    }
                }
                for (int v = 0; v < V; ++v)
                    for (int t = 0; t < R; ++t) {
                        acc[t][0] += x[t][v] * w[v][0];
                        acc[t][1] += x[t][v] * w[v][1];
                    }
            }
            real* out = partial + slice * outputs + r0 * N + j0;
            for (int t = 0; t < R; ++t) {
                out[t * N] = acc[t][0];
                if (j0 + 1 < N) out[t * N + 1] = acc[t][1];
            }
        }
    }
}

// Inputs per iteration of the feedforward's inner loop on its vector path: 8 in float32
// (two float4 loads a row: the loop's addresses, counter and branch then serve 160 FMAs
// at R = 10, not 80; modelled cycles in docs/performance.md), VW in float64 (whose
// builds are at their register limit).
#define FFW ((int)(sizeof(real) == 4 ? 2 * VW : VW))

// Inputs per work item of the update on its vector path: 16 in float32 (four float4 loads
// a row; each item's fixed cost, its indices and weight loads and stores, is then spread
// over 32 R multiply-adds; modelled cycles in docs/performance.md), 2 in float64 (one
// double2; more would not fit the registers).
#define UPW ((int)(sizeof(real) == 4 ? 4 * VW : VW))

// The row stride (leading dimension) of layer l's transposed weights wT (C rows of N) in
// the working copy: N in global memory, and in shared memory a stride that keeps the
// backprop's transposed reads wT[c * ld + j] (the lanes of a warp at neighbouring c,
// the same j) free of bank conflicts: odd where no pair loads need an even stride (then
// 32 neighbouring c fall in 32 different banks), else 2 mod 4 (at most 2 lanes a bank;
// N = 32 had all 32 lanes of a float32 warp in one bank). Mirrored by working_stride in
// backends/fused_sgd.py, which sizes the shared memory.
DEVICE int working_stride(int N, int C, bool in_shared) {
    if (!in_shared) return N;
    const bool pairs = N % 2 == 0 && (C % FFW == 0 || C % UPW == 0);
    if (pairs) return N % 4 == 0 ? N + 2 : N;
    return N % 2 == 0 ? N + 1 : N;
}

// The update of one weight matrix (ch. 3, eq. 93), in tiles of V inputs x 2 outputs:
// wT[c][j] <- wT[c][j] decay - (sum_r d[r][j] a_prev[r][c]) scale, r ascending.
// The items (V inputs, output pair) are walked by `walk` (width: the output pairs).
template <int R, int V>
DEVICE void update_weights(real* RESTRICT wT, const real* RESTRICT a_prev,
                           const real* RESTRICT d, int C, int N, int ld, int k, real decay,
                           real scale, gpunet_walk walk) {
    const int units = C / V;
    for (; walk.row < units; advance(walk)) {  // @model up.item up{l} in=up trips=rounds(up_items(l),w,T)
        const int c0 = walk.row * V, j0 = walk.col * 2;
        real g[V][2];
        for (int u = 0; u < V; ++u) g[u][0] = g[u][1] = 0;
        // one tile per full mini-batch mostly (k = R): not unrolled (copies of the
        // tile's code for k > R would only lengthen the item's code)
#pragma unroll 1
        for (int r0 = 0; r0 < k; r0 += R) {  // @model up.rows up{l} trips=k//row_tile(k) sig=fma:2*row_tile(k)*up_width(l);shared:row_tile(k)*(up_width(l)//VW+1+2*(up_width(l)==1))
#pragma unroll
            for (int r = r0; r < r0 + R; ++r) {
                real x[V], dv[2];
                load_reals<V>(x, a_prev + r * C + c0);
                if (V > 1) {
                    load_reals<2>(dv, d + r * N + j0);
                } else {
                    dv[0] = d[r * N + j0];
                    dv[1] = j0 + 1 < N ? d[r * N + j0 + 1] : (real)0;
                }
                for (int u = 0; u < V; ++u) {
                    g[u][0] += dv[0] * x[u];
                    g[u][1] += dv[1] * x[u];
                }
            }
        }
        for (int u = 0; u < V; ++u) {
            real* q = wT + (c0 + u) * ld + j0;
            if (V > 1) {
                real w[2];
                load_reals<2>(w, q);
                store_pair(q, w[0] * decay - g[u][0] * scale, w[1] * decay - g[u][1] * scale);
            } else {
                q[0] = q[0] * decay - g[u][0] * scale;
                if (j0 + 1 < N) q[1] = q[1] * decay - g[u][1] * scale;
            }
        }
    }
}

// Momentum and L1 for one network (ch. 3, eq. 96, 97, 107, 108): mu, eta l1 / n and
// eta lambda / n in the network's real, and its velocities in the flat layout (global
// memory, K x P beside the parameters; null when the launch has none).
struct gpunet_extension { real mu, l1, l2; real* v; };

DEVICE real gpunet_sign(real w) { return (real)((w > (real)0) - (w < (real)0)); }

// One weight's extended update: G = g scale + l1 sgn(w); with velocities
// v <- mu v - G - l2 w and w <- w decay - G + mu v, else w <- w decay - G.
DEVICE real extended_weight(real w, real g, real decay, real scale,
                            const gpunet_extension& e, real* RESTRICT v) {
    const real G = g * scale + e.l1 * gpunet_sign(w);
    if (!e.v) return w * decay - G;
    const real held = e.mu * *v;
    *v = held - G - e.l2 * w;
    return w * decay - G + held;
}

// update_weights with L1 or momentum (a block whose network has L1, or a launch with
// velocities): the same sums, each weight then updated by extended_weight (vw: the
// layer's velocities, flat: vw[j C + c]). Its own function, so that the plain update's
// machine code is the one it always was; the model (scripts/kernel_model.py) times
// plain SGD, the configurations its budgets cover, so these loops' trips are 0 there.
template <int R, int V>
DEVICE void update_weights_extended(real* RESTRICT wT, const real* RESTRICT a_prev,
                                    const real* RESTRICT d, int C, int N, int ld, int k,
                                    real decay, real scale, gpunet_walk walk,
                                    const gpunet_extension& e, real* RESTRICT vw) {
    const int units = C / V;
    for (; walk.row < units; advance(walk)) {  // @model upx.item up{l} in=up trips=0
        const int c0 = walk.row * V, j0 = walk.col * 2;
        real g[V][2];
        for (int u = 0; u < V; ++u) g[u][0] = g[u][1] = 0;
#pragma unroll 1
        for (int r0 = 0; r0 < k; r0 += R) {  // @model upx.rows up{l} trips=0
#pragma unroll
            for (int r = r0; r < r0 + R; ++r) {
                real x[V], dv[2];
                load_reals<V>(x, a_prev + r * C + c0);
                if (V > 1) {
                    load_reals<2>(dv, d + r * N + j0);
                } else {
                    dv[0] = d[r * N + j0];
                    dv[1] = j0 + 1 < N ? d[r * N + j0 + 1] : (real)0;
                }
                for (int u = 0; u < V; ++u) {
                    g[u][0] += dv[0] * x[u];
                    g[u][1] += dv[1] * x[u];
                }
            }
        }
        for (int u = 0; u < V; ++u) {
            real* q = wT + (c0 + u) * ld + j0;
            real* v = e.v ? vw + j0 * C + c0 + u : (real*)0;
            q[0] = extended_weight(q[0], g[u][0], decay, scale, e, v);
            if (j0 + 1 < N) q[1] = extended_weight(q[1], g[u][1], decay, scale, e, v ? v + C : v);
        }
    }
}

KERNEL void gpunet_sgd_epoch(
    real* RESTRICT params,             // K x P: each network's flat parameter buffer
    real* RESTRICT work,               // K x P: working copies (unused if in shared)
    const real* RESTRICT X,            // n x sizes[0]: training inputs, one per row
    const real* RESTRICT Y,            // n x sizes[L-1]: desired outputs
    const long long* RESTRICT perm,    // K x n: each network's epoch permutation
    const double* RESTRICT eta,        // K learning rates
    const double* RESTRICT lmbda,      // K L2 regularization parameters
    const int* RESTRICT sizes,         // L layer sizes, input layer first
    real* RESTRICT velocity,           // K x P: momentum's velocities (has_velocity)
    const double* RESTRICT momentum,   // K momentum coefficients mu
    const double* RESTRICT l1,         // K L1 regularization parameters
#if GPUNET_DROPOUT
    const unsigned long long* RESTRICT drop_key,  // K x 2: each network's Philox key
    const unsigned long long* RESTRICT drop_threshold,  // K: floor(p 2^64), 0: keep all
    int epoch,                         // the run's epoch this launch trains
#endif
    int L, int n, int m, int cost,     // the cost's kernel_id (gpunet_output_error)
    int params_in_shared, int partial_capacity, int has_velocity)
{
    const int tid = THREAD_ID, T = NUM_THREADS, net = BLOCK_ID;
    const int layers = L - 1;                      // weight matrices

    // Offsets of every layer's weights and biases in the flat buffer (the working
    // layout has the same offsets), and of its activations / errors in shared memory.
    int w_off[GPUNET_MAX_LAYERS], b_off[GPUNET_MAX_LAYERS], a_off[GPUNET_MAX_LAYERS];
    int P = 0, A = 0, n_max = 0;
    for (int l = 0; l < layers; ++l) { w_off[l] = P; P += sizes[l + 1] * sizes[l]; }
    // The working copy: layer l's wT at wk_off[l], rows ld[l] apart (working_stride),
    // each matrix starting on 16 bytes, then the biases in the flat order (Pw reals).
    int wk_off[GPUNET_MAX_LAYERS], ld[GPUNET_MAX_LAYERS], Pw = 0;
    for (int l = 0; l < layers; ++l) {
        ld[l] = working_stride(sizes[l + 1], sizes[l], params_in_shared);
        wk_off[l] = Pw;
        Pw += params_in_shared ? (sizes[l] * ld[l] + VW - 1) / VW * VW : sizes[l] * ld[l];
    }
    const int bk_off0 = Pw;  // the working copy's first bias
    for (int l = 0; l < layers; ++l) {
        b_off[l] = P; P += sizes[l + 1];
        a_off[l] = A; A += m * sizes[l + 1];
        if (sizes[l + 1] > n_max) n_max = sizes[l + 1];
    }
    Pw += P - b_off[0];
#define BK_OFF(l) (bk_off0 + b_off[l] - b_off[0])  // layer l's biases in the working copy
    const int n_in = sizes[0], n_out = sizes[L - 1];

    real* shared = (real*)SHARED_MEMORY;
    real* p = params_in_shared ? shared : work + (long long)net * P;  // working params
    real* xs = shared + (params_in_shared ? Pw : 0);  // m x n_in: the mini-batch's inputs
    real* ys = xs + m * n_in;                        // m x n_out: desired outputs
    real* acts = ys + m * n_out;                     // activations, layer by layer
    real* deltas = acts + A;                         // errors delta^l, same layout
    real* partial = deltas + A;                      // partial sums of feedforward
#if GPUNET_DROPOUT
    // The step's masks (after the partial sums): hidden layer l's at h_off[l].
    real* dropped = partial + partial_capacity;
    int h_off[GPUNET_MAX_LAYERS], H = 0;
    for (int l = 0; l < layers; ++l) { h_off[l] = H; if (l < layers - 1) H += sizes[l + 1]; }
    const unsigned long long* key = drop_key + 2 * (long long)net;
    const unsigned long long threshold = drop_threshold[net];
#endif
    real* flat = params + (long long)net * P;
    const long long* order = perm + (long long)net * n;
    const double eta_ = eta[net];
    const real decay = (real)(1.0 - eta_ * lmbda[net] / n);
    // L1 or momentum (the launch's velocities): the extended update, for this block.
    const bool ext = has_velocity || l1[net] != 0.0;
    gpunet_extension e;
    e.mu = (real)momentum[net];
    e.l1 = (real)(eta_ * l1[net] / n);
    e.l2 = (real)(eta_ * lmbda[net] / n);
    e.v = has_velocity ? velocity + (long long)net * P : (real*)0;

    // Flat layout -> working layout (weights transposed).
    for (int l = 0; l < layers; ++l) {
        const int N = sizes[l + 1], C = sizes[l];
        for (int idx = tid; idx < N * C; idx += T)      // idx = c N + j: wT[c][j] = w[j][c]
            p[wk_off[l] + idx / N * ld[l] + idx % N] = flat[w_off[l] + (idx % N) * C + idx / N];
    }
    for (int idx = tid; idx < P - b_off[0]; idx += T) p[bk_off0 + idx] = flat[b_off[0] + idx];
    // No barrier here: the gather below touches no parameters, and its barrier
    // orders this copy before the first read of the working copy.

    // Rows by 16-byte vectors, prefetched, where rows and buffers allow it; else
    // element by element, each step.
    const bool vector_rows = n_in % VW == 0 && aligned(X, 16, false) && aligned(xs, 16, true);
    real x_regs[PREFETCH][16 / sizeof(real)];
    real y_reg = 0;
    if (vector_rows) fetch_rows(x_regs, &y_reg, X, Y, order, 0, n < m ? n : m, n_in, n_out, tid, T);

    // Every layer's work split (gpunet_layer) and eta / k, for full mini-batches
    // (plans[0]) and for the last one, smaller when m does not divide n (plans[1]).
    const int k_last = n % m ? n % m : m;
    const real scales[2] = {(real)(eta_ / (n < m ? n : m)), (real)(eta_ / k_last)};
    gpunet_layer plans[2][GPUNET_MAX_LAYERS];
    for (int last = 0; last < 2; ++last) {
        const int k = last ? k_last : (n < m ? n : m);
        for (int l = 0; l < layers; ++l) {
            const int N = sizes[l + 1], C = sizes[l], tiles = (N + 1) / 2;
            const real* a_prev = l == 0 ? xs : acts + a_off[l - 1];
            const real* wT = p + wk_off[l];
            gpunet_layer& g = plans[last][l];
            g.items = walk_from(tid, T, tiles);
            g.S = split_count(C, tiles, k * N, T, partial_capacity);
            g.ff_vector = C % FFW == 0 && N % 2 == 0 && aligned(a_prev, 16, true)
                && aligned(wT, 2 * (int)sizeof(real), params_in_shared);
            const int units = g.ff_vector ? C / FFW : C;
            g.per = units / g.S; g.extra = units - g.per * g.S;
            g.j0 = tid % N; g.j_per_T = T % N;
            g.up_vector = C % UPW == 0 && N % 2 == 0 && aligned(a_prev, 16, true)
                && aligned(deltas + a_off[l], 2 * (int)sizeof(real), true)
                && aligned(wT, 2 * (int)sizeof(real), params_in_shared);
        }
    }

    for (int s = 0; s < n; s += m) {  // @model step step trips=1
        const int k = n - s < m ? n - s : m;       // rows in this mini-batch
        const int last = k != m;                   // the smaller last mini-batch
        const real scale = scales[last];

        // The mini-batch's rows by the permutation: from the registers loaded during
        // the previous step, the rest gathered now (unrolled: independent loads in
        // flight together hide global-memory latency).
        if (vector_rows) {
            place_rows(xs, ys, x_regs, y_reg, k, n_in, n_out, tid, T);
            const int q = n_in / VW;
            for (int v = tid + PREFETCH * T; v < k * q; v += T) {  // @model gather.xv gather trips=rounds(k*sizes[0]//VW-PREFETCH*T,w,T)*rows_vector sig=global:2 dram=2
                const int r = v / q;
                load_reals<VW>(xs + v * VW, X + order[s + r] * n_in + (v - r * q) * VW);
            }
            for (int idx = tid + T; idx < k * n_out; idx += T)  // @model gather.yv gather trips=rounds(k*sizes[-1]-T,w,T)*rows_vector dram=2
                ys[idx] = Y[order[s + idx / n_out] * n_out + idx % n_out];
        } else {
            // Four elements a thread in flight together, unrolled by hand inside the
            // loop (no remainder code outside it, in every step of the vector path).
            for (int idx = tid; idx < k * n_in; idx += 4 * T) {  // @model gather.x gather trips=rounds(k*sizes[0],w,4*T)*(1-rows_vector) sig=global:8 dram=2
                real x4[4];
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const int e = idx + u * T;
                    x4[u] = e < k * n_in ? X[order[s + e / n_in] * n_in + e % n_in] : (real)0;
                }
#pragma unroll
                for (int u = 0; u < 4; ++u)
                    if (idx + u * T < k * n_in) xs[idx + u * T] = x4[u];
            }
            for (int idx = tid; idx < k * n_out; idx += T)  // @model gather.y gather trips=rounds(k*sizes[-1],w,T)*(1-rows_vector) sig=global:2 dram=2
                ys[idx] = Y[order[s + idx / n_out] * n_out + idx % n_out];
        }
#if GPUNET_DROPOUT
        for (int idx = tid; idx < H; idx += T) {  // the step's masks, one per hidden neuron
            int unit = idx, layer = 0;
            while (unit >= sizes[layer + 1]) { unit -= sizes[layer + 1]; ++layer; }
            dropped[idx] = gpunet_keep(key, threshold, unit, layer, s / m, epoch);
        }
#endif
        SYNC(1);
        if (vector_rows && s + m < n)  // the next mini-batch's rows, for the next step
            fetch_rows(x_regs, &y_reg, X, Y, order, s + m, n - s - m < m ? n - s - m : m,
                       n_in, n_out, tid, T);

        // Feedforward, layer by layer: partial sums over slices of the inputs, then
        // a^l = sigma(sum + b).
        for (int l = 0; l < layers; ++l) {  // @model ff ff{l} each=l:range(layers)
            const int N = sizes[l + 1], C = sizes[l], outputs = k * N;
            const real* a_prev = l == 0 ? xs : acts + a_off[l - 1];
            const real* wT = p + wk_off[l];
            const int ldl = ld[l];
            const gpunet_layer& g = plans[last][l];
            const int S = g.S;
#define GPUNET_FF(r) case r: \
    if (g.ff_vector) ff_sums<r, FFW>(partial, a_prev, wT, C, N, ldl, k, S, g.per, g.extra, g.items); \
    else ff_sums<r, 1>(partial, a_prev, wT, C, N, ldl, k, S, g.per, g.extra, g.items); break;
            switch (row_tile(k)) { ROW_TILES(GPUNET_FF) }
#undef GPUNET_FF
            SYNC(2);
            const real* b = p + BK_OFF(l);
            int j = g.j0;  // idx % N, carried
            for (int idx = tid; idx < outputs; idx += T) {  // @model ff.sig ff{l}.sigmoid trips=rounds(k*sizes[l+1],w,T)
                real z = 0;
                for (int slice = 0; slice < S; ++slice)  // @model ff.reduce ff{l}.sigmoid trips=ff_slices(l) sig=fp:1
                    z += partial[slice * outputs + idx];
                acts[a_off[l] + idx] = GPUNET_DROP(l < layers - 1, GPUNET_LAYER_ACTIVATION(l == layers - 1, z + b[j]), dropped + h_off[l], j);
                j += g.j_per_T;
                if (j >= N) j -= N;
            }
            SYNC(3);
        }
#if GPUNET_SOFTMAX
        {
            // The softmax output layer (ch. 3, eq. 78): each row (example) of z^L, one
            // thread a row, as e^{z_j - max z} / sum_k e^{z_k - max z} (NumPy's order:
            // shift, exponentiate, sum, divide).
            real* a = acts + a_off[layers - 1];
            for (int r = tid; r < k; r += T) {  // @model soft soft trips=rounds(k,w,T)
                real* row = a + r * n_out;
                real top = row[0];
                for (int j = 1; j < n_out; ++j)  // @model soft.max soft trips=sizes[-1]-1
                    top = row[j] > top ? row[j] : top;
                real sum = 0;
                for (int j = 0; j < n_out; ++j) {  // @model soft.exp soft trips=sizes[-1]
                    row[j] = gpunet_exp(row[j] - top);
                    sum += row[j];
                }
                for (int j = 0; j < n_out; ++j)  // @model soft.div soft trips=sizes[-1]
                    row[j] = row[j] / sum;
            }
            SYNC(7);
        }
#endif

        // Output error delta^L.
        {
            const real* a = acts + a_off[layers - 1];
            real* d = deltas + a_off[layers - 1];
            for (int idx = tid; idx < k * n_out; idx += T) {  // @model out out trips=rounds(k*sizes[-1],w,T)
                d[idx] = gpunet_output_error(cost, a[idx], ys[idx]);
            }
        }
        SYNC(4);

        // Backpropagate: delta^l = (delta^{l+1} w^{l+1}) sigma'(z^l), rows = examples.
        for (int l = layers - 1; l > 0; --l) {  // @model bp bp{l} each=l:range(layers-1,0,-1)
            const int N = sizes[l + 1], C = sizes[l], ldl = ld[l];  // w^{l+1} is N x C
            const real* wT = p + wk_off[l];
            const real* d_next = deltas + a_off[l];
            const real* a = acts + a_off[l - 1];
            real* d = deltas + a_off[l - 1];
            for (int idx = tid; idx < k * C; idx += T) {  // @model bp.item bp{l} trips=rounds(k*sizes[l],w,T)
                const int r = idx / C, c = idx % C;
                real sum = 0;
                for (int j = 0; j < N; ++j)  // @model bp.inner bp{l} trips=sizes[l+1] sig=fma:1
                    sum += d_next[r * N + j] * wT[c * ldl + j];
                d[idx] = GPUNET_DROP(true, gpunet_activation_prime_times(sum, a[idx]), dropped + h_off[l - 1], c);
            }
            SYNC(5);
        }

        // Update every weight and bias (no phase reads what another thread writes).
        for (int l = 0; l < layers; ++l) {  // @model up up{l} each=l:range(layers)
            const int N = sizes[l + 1], C = sizes[l];
            const real* a_prev = l == 0 ? xs : acts + a_off[l - 1];
            const real* d = deltas + a_off[l];
            real* wT = p + wk_off[l];
            const int ldl = ld[l];
            const gpunet_layer& g = plans[last][l];
            real* vw = e.v ? e.v + w_off[l] : (real*)0;
#define GPUNET_UP(r) case r: \
    if (ext) { \
        if (g.up_vector) update_weights_extended<r, UPW>(wT, a_prev, d, C, N, ldl, k, decay, scale, g.items, e, vw); \
        else update_weights_extended<r, 1>(wT, a_prev, d, C, N, ldl, k, decay, scale, g.items, e, vw); \
    } else if (g.up_vector) update_weights<r, UPW>(wT, a_prev, d, C, N, ldl, k, decay, scale, g.items); \
    else update_weights<r, 1>(wT, a_prev, d, C, N, ldl, k, decay, scale, g.items); break;
            switch (row_tile(k)) { ROW_TILES(GPUNET_UP) }
#undef GPUNET_UP
            // The biases (eq. 94) by the last threads (j = T - 1 - tid, ...), whose warp
            // has the fewest weight items when T does not divide their number.
            real* b = p + BK_OFF(l);
            for (int j = T - 1 - tid; j < N; j += T) {  // @model up.bias up{l} trips=rounds_back(sizes[l+1],w,T)
                real gb = 0;
                for (int r = 0; r < k; ++r)  // @model up.bsum up{l} trips=k sig=fp:1
                    gb += d[r * N + j];
                if (e.v) {  // momentum: v <- mu v - G, b <- b - G + mu v (no L1 on biases)
                    real* v = e.v + b_off[l] + j;
                    const real G = gb * scale, held = e.mu * *v;
                    *v = held - G;
                    b[j] = b[j] - G + held;
                } else {
                    b[j] = b[j] - gb * scale;
                }
            }
        }
        SYNC(6);
    }

    // Working layout -> flat layout.
    for (int l = 0; l < layers; ++l) {
        const int N = sizes[l + 1], C = sizes[l];
        for (int idx = tid; idx < N * C; idx += T)      // idx = j C + c in the flat buffer
            flat[w_off[l] + idx] = p[wk_off[l] + (idx % C) * ld[l] + idx / C];
    }
    for (int idx = tid; idx < P - b_off[0]; idx += T) flat[b_off[0] + idx] = p[bk_off0 + idx];
}
