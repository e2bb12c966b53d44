// gpunet's fused training kernel: one launch trains K sigmoid networks for a whole
// epoch of mini-batch SGD, one thread block per network.
//
// The algorithm is the book's (Nielsen, "Neural Networks and Deep Learning"):
//   feedforward     z^l = w^l a^{l-1} + b^l,  a^l = sigma(z^l)          (ch. 1, eq. 25)
//   output error    delta^L = (a^L - y) sigma'(z^L)  (quadratic cost)    (ch. 2, BP1)
//                   delta^L = a^L - y                (cross-entropy)     (ch. 3, eq. 66)
//   backpropagate   delta^l = ((w^{l+1})^T delta^{l+1}) sigma'(z^l)      (ch. 2, BP2)
//   update          w -> (1 - eta lambda / n) w - (eta / m) sum_x delta^l (a^{l-1})^T
//                   b -> b - (eta / m) sum_x delta^l                     (ch. 3, eq. 93, 94)
// with sigma'(z) = a (1 - a), for every mini-batch of the epoch's permutation, the last
// one possibly smaller. The order of operations in each formula follows gpunet's NumPy
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
// Memory. The parameters arrive in gpunet's flat layout (every weight matrix w^l,
// (n_{l+1}, n_l) row-major, then every bias; see gpunet/parameters.py). For the epoch
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

// sigma(z) = 1 / (1 + e^{-z}) (ch. 1, eq. 3); e^{-z} = inf for very negative z gives 0.
DEVICE real sigmoid(real z) { return (real)1 / ((real)1 + gpunet_exp(-z)); }

// Register tiles: in feedforward a thread computes TILE_ROWS examples x TILE_OUT
// outputs of one slice of the input sum; in the update, TILE_C x TILE_J weights. Each
// value read from shared memory then serves several multiply-adds (shared-memory
// bandwidth, not arithmetic, bounds a block that trains a small network).
#define TILE_ROWS 12
#define TILE_OUT 2
#define TILE_C 4
#define TILE_J 2

// How many slices the sum over a layer's n_in inputs is cut into: about one work item
// (slice x output tile) per thread, slices of at least 8 inputs, and no more partial
// sums (slices x k x N) than the buffer holds.
DEVICE int split_count(int n_in, int tiles, int outputs, int T, int capacity) {
    int s = (T + tiles - 1) / tiles;
    int most = n_in / 8;
    if (s > most) s = most;
    if (s > capacity / outputs) s = capacity / outputs;
    return s < 1 ? 1 : s;
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
    int L, int n, int m, int cost,     // cost: 0 quadratic, 1 cross-entropy
    int params_in_shared, int partial_capacity)
{
    const int tid = THREAD_ID, T = NUM_THREADS, net = BLOCK_ID;
    const int layers = L - 1;                      // weight matrices

    // Offsets of every layer's weights and biases in the flat buffer (the working
    // layout has the same offsets), and of its activations / errors in shared memory.
    int w_off[GPUNET_MAX_LAYERS], b_off[GPUNET_MAX_LAYERS], a_off[GPUNET_MAX_LAYERS];
    int P = 0, A = 0, n_max = 0;
    for (int l = 0; l < layers; ++l) { w_off[l] = P; P += sizes[l + 1] * sizes[l]; }
    for (int l = 0; l < layers; ++l) {
        b_off[l] = P; P += sizes[l + 1];
        a_off[l] = A; A += m * sizes[l + 1];
        if (sizes[l + 1] > n_max) n_max = sizes[l + 1];
    }
    const int n_in = sizes[0], n_out = sizes[L - 1];

    real* shared = (real*)SHARED_MEMORY;
    real* p = params_in_shared ? shared : work + (long long)net * P;  // working params
    real* xs = shared + (params_in_shared ? P : 0);  // m x n_in: the mini-batch's inputs
    real* ys = xs + m * n_in;                        // m x n_out: desired outputs
    real* acts = ys + m * n_out;                     // activations, layer by layer
    real* deltas = acts + A;                         // errors delta^l, same layout
    real* partial = deltas + A;                      // partial sums of feedforward
    real* flat = params + (long long)net * P;
    const long long* order = perm + (long long)net * n;
    const double eta_ = eta[net];
    const real decay = (real)(1.0 - eta_ * lmbda[net] / n);

    // Flat layout -> working layout (weights transposed).
    for (int l = 0; l < layers; ++l) {
        const int N = sizes[l + 1], C = sizes[l];
        for (int idx = tid; idx < N * C; idx += T)      // idx = c N + j in the working copy
            p[w_off[l] + idx] = flat[w_off[l] + (idx % N) * C + idx / N];
    }
    for (int idx = b_off[0] + tid; idx < P; idx += T) p[idx] = flat[idx];
    // No barrier here: the gather below touches no parameters, and its barrier
    // orders this copy before the first read of the working copy.

    for (int s = 0; s < n; s += m) {  // @model step step trips=1
        const int k = n - s < m ? n - s : m;       // rows in this mini-batch
        const real scale = (real)(eta_ / k);

        // Gather the mini-batch's rows by the permutation (unrolled: independent loads
        // in flight together hide global-memory latency).
#pragma unroll 4
        for (int idx = tid; idx < k * n_in; idx += T)  // @model gather.x gather trips=rounds(k*sizes[0],w,T) sig=global:2 dram=2
            xs[idx] = X[order[s + idx / n_in] * n_in + idx % n_in];
        for (int idx = tid; idx < k * n_out; idx += T)  // @model gather.y gather trips=rounds(k*sizes[-1],w,T) sig=global:2 dram=2
            ys[idx] = Y[order[s + idx / n_out] * n_out + idx % n_out];
        SYNC(1);

        // Feedforward, layer by layer: partial sums over slices of the inputs, then
        // a^l = sigma(sum + b).
        for (int l = 0; l < layers; ++l) {  // @model ff ff{l} each=l:range(layers)
            const int N = sizes[l + 1], C = sizes[l], outputs = k * N;
            const real* a_prev = l == 0 ? xs : acts + a_off[l - 1];
            const real* wT = p + w_off[l];
            const int tiles = (N + TILE_OUT - 1) / TILE_OUT;
            const int S = split_count(C, tiles, outputs, T, partial_capacity);
            for (int item = tid; item < S * tiles; item += T) {  // @model ff.item ff{l}.sum trips=rounds(ff_slices(l)*cdiv(sizes[l+1],2),w,T)
                const int slice = item / tiles, j0 = (item % tiles) * TILE_OUT;
                const int c0 = (int)((long long)C * slice / S);
                const int c1 = (int)((long long)C * (slice + 1) / S);
                for (int r0 = 0; r0 < k; r0 += TILE_ROWS) {  // @model ff.rows ff{l}.sum trips=cdiv(k,12)
                    real acc[TILE_ROWS][TILE_OUT];
                    for (int t = 0; t < TILE_ROWS; ++t)
                        for (int u = 0; u < TILE_OUT; ++u) acc[t][u] = 0;
                    for (int c = c0; c < c1; ++c) {  // @model ff.inner ff{l}.sum trips=cdiv(sizes[l],ff_slices(l)) sig=fma:24
                        real w[TILE_OUT];
                        for (int u = 0; u < TILE_OUT; ++u)
                            w[u] = j0 + u < N ? wT[c * N + j0 + u] : (real)0;
                        for (int t = 0; t < TILE_ROWS; ++t) {
                            if (r0 + t < k) {
                                const real x = a_prev[(r0 + t) * C + c];
                                for (int u = 0; u < TILE_OUT; ++u) acc[t][u] += x * w[u];
                            }
                        }
                    }
                    for (int t = 0; t < TILE_ROWS && r0 + t < k; ++t)
                        for (int u = 0; u < TILE_OUT && j0 + u < N; ++u)
                            partial[slice * outputs + (r0 + t) * N + j0 + u] = acc[t][u];
                }
            }
            SYNC(2);
            for (int idx = tid; idx < outputs; idx += T) {  // @model ff.sig ff{l}.sigmoid trips=rounds(k*sizes[l+1],w,T)
                real z = 0;
                for (int slice = 0; slice < S; ++slice)  // @model ff.reduce ff{l}.sigmoid trips=ff_slices(l) sig=fp:1
                    z += partial[slice * outputs + idx];
                acts[a_off[l] + idx] = sigmoid(z + p[b_off[l] + idx % N]);
            }
            SYNC(3);
        }

        // Output error delta^L.
        {
            const real* a = acts + a_off[layers - 1];
            real* d = deltas + a_off[layers - 1];
            for (int idx = tid; idx < k * n_out; idx += T) {  // @model out out trips=rounds(k*sizes[-1],w,T)
                real e = a[idx] - ys[idx];
                if (cost == 0) { e = e * a[idx]; e = e * ((real)1 - a[idx]); }
                d[idx] = e;
            }
        }
        SYNC(4);

        // Backpropagate: delta^l = (delta^{l+1} w^{l+1}) a^l (1 - a^l), rows = examples.
        for (int l = layers - 1; l > 0; --l) {  // @model bp bp{l} each=l:range(layers-1,0,-1)
            const int N = sizes[l + 1], C = sizes[l];  // w^{l+1} is N x C
            const real* wT = p + w_off[l];
            const real* d_next = deltas + a_off[l];
            const real* a = acts + a_off[l - 1];
            real* d = deltas + a_off[l - 1];
            for (int idx = tid; idx < k * C; idx += T) {  // @model bp.item bp{l} trips=rounds(k*sizes[l],w,T)
                const int r = idx / C, c = idx % C;
                real sum = 0;
                for (int j = 0; j < N; ++j)  // @model bp.inner bp{l} trips=sizes[l+1] sig=fma:1
                    sum += d_next[r * N + j] * wT[c * N + j];
                sum = sum * a[idx];
                d[idx] = sum * ((real)1 - a[idx]);
            }
            SYNC(5);
        }

        // Update every weight and bias (no phase reads what another thread writes).
        for (int l = 0; l < layers; ++l) {  // @model up up{l} each=l:range(layers)
            const int N = sizes[l + 1], C = sizes[l];
            const real* a_prev = l == 0 ? xs : acts + a_off[l - 1];
            const real* d = deltas + a_off[l];
            real* wT = p + w_off[l];
            const int quads = (C + TILE_C - 1) / TILE_C, pairs = (N + TILE_J - 1) / TILE_J;
            for (int item = tid; item < quads * pairs; item += T) {  // @model up.item up{l} trips=rounds(cdiv(sizes[l],4)*cdiv(sizes[l+1],2),w,T)
                const int c0 = (item / pairs) * TILE_C, j0 = (item % pairs) * TILE_J;
                real g[TILE_C][TILE_J];
                for (int u = 0; u < TILE_C; ++u)
                    for (int v = 0; v < TILE_J; ++v) g[u][v] = 0;
                for (int r = 0; r < k; ++r) {  // @model up.inner up{l} trips=k sig=fma:8
                    real dv[TILE_J];
                    for (int v = 0; v < TILE_J; ++v)
                        dv[v] = j0 + v < N ? d[r * N + j0 + v] : (real)0;
                    for (int u = 0; u < TILE_C; ++u) {
                        if (c0 + u < C) {
                            const real x = a_prev[r * C + c0 + u];
                            for (int v = 0; v < TILE_J; ++v) g[u][v] += dv[v] * x;
                        }
                    }
                }
                for (int u = 0; u < TILE_C && c0 + u < C; ++u)
                    for (int v = 0; v < TILE_J && j0 + v < N; ++v) {
                        const int idx = (c0 + u) * N + j0 + v;
                        wT[idx] = wT[idx] * decay - g[u][v] * scale;
                    }
            }
            real* b = p + b_off[l];
            for (int j = tid; j < N; j += T) {  // @model up.bias up{l}.bias trips=rounds(sizes[l+1],w,T)
                real g = 0;
                for (int r = 0; r < k; ++r)  // @model up.bsum up{l}.bias trips=k sig=fp:1
                    g += d[r * N + j];
                b[j] = b[j] - g * scale;
            }
        }
        SYNC(6);
    }

    // Working layout -> flat layout.
    for (int l = 0; l < layers; ++l) {
        const int N = sizes[l + 1], C = sizes[l];
        for (int idx = tid; idx < N * C; idx += T)      // idx = j C + c in the flat buffer
            flat[w_off[l] + idx] = p[w_off[l] + (idx % C) * N + idx / C];
    }
    for (int idx = b_off[0] + tid; idx < P; idx += T) flat[idx] = p[idx];
}
