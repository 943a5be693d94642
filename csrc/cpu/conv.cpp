// conv.cpp -- 2-d convolution forward/backward and unfold/fold on CPU (float32, float64): input
// validation and run-time dispatch between the baseline and AVX2+FMA builds of the kernel bodies in
// conv_impl.h (conv_avx2.cpp; TOCHA_CPU_ISA=generic forces the baseline, as for the GEMM).
//   x (N, C, H, W), w (K, Cg = C/groups, kh, kw), y (N, K, OH, OW); see conv.h for the shape formulas.
// Algorithms (CKK = Cg*kh*kw, Kg = K/groups, L = OH*OW):
//   * im2col + GEMM (general case). Per image and group: col (CKK, L) built by im2col, then
//     y_g (Kg, L) = [W_g | b_g] (Kg, CKK+1) @ [col; 1...1] (CKK+1, L): the bias is an extra K row of the GEMM
//     (a row of ones under the col band), so y is written once, no bias pre-fill and accumulating load.
//     The weights (with the bias column) are packed into the GEMM's A layout once per call (gemm_pack_a)
//     and every image's GEMM reads them pre-packed (gemm_prepacked, bitwise equal to gemm()).
//     1x1 / stride 1 / no padding skips im2col (the input itself is the col matrix; bias pre-filled there).
//     Stride 1 with OW == W ('same' padding) or a single output row (conv1d): every tap's col row is x read
//     at a fixed shift, masked at the image edges, so the col band is written straight into the GEMM's
//     packed-B panels (im2col_flat_packed: NR-wide load, AND with a precomputed column mask, aligned store)
//     and the GEMM skips its B packing; same packed values, so the same bits as im2col + the GEMM's packer.
//     grad input: colgrad = W_g^T @ gy_g (W_g^T packed once per call from strided reads), col2im into dx.
//     grad weight: the batch is cut into min(N, 16) slices (a function of N only); each slice accumulates
//     dW_g += gy_n @ col_n^T (or dW_g^T += col_n @ gy_n^T when that wastes less of the GEMM's 6x16 register
//     tiles, e.g. CKK = 9, Kg = 32) into its own partial; partials are summed in slice order.
//     im2col/col2im copy/add image rows with inline vector loops (no memcpy call per 10-30 element row);
//     for stride 1 and OW == W ('same' padding) a tap's whole valid block is one shifted contiguous run.
//     Col matrices above 8 MiB are processed in bands of output rows (bounded scratch, GEMMs read/write
//     the y / gy bands in place through their leading dimension). Scratch buffers are per thread and
//     reused across calls (no allocation, page faults or zero fill per call).
//   * direct kernel when every output channel reads a single input channel (Cg == 1: depthwise, or a
//     1-channel input): per output plane, a correlation over a zero-padded copy of the input plane with
//     kLanes output columns accumulated in vector registers over all taps (see direct_plane_corr).
//   * direct multi-channel forward ("implicit GEMM", conv_impl.h direct_mc_forward) for column stride 1 and few
//     output channels per group: the image's Cg planes copied once into a zero-padded buffer (planes an odd
//     number of cache lines apart), then per output row 16-lane tiles (2 vectors) x blocks of up to 6 output
//     channels accumulate in 12 registers over all taps, each tap's B vectors loaded straight from the buffer
//     at a fixed offset: no col matrix, no B packing. Items: (image, group) pairs, cut into bands of output rows
//     when there are fewer than 4 per thread. Each output is one FMA chain over the taps in im2col order with
//     the bias last, the same arithmetic as the GEMM's (bias row last): bitwise equal to the im2col path on
//     AVX2 while the taps (+ bias row) fit one GEMM K block (<= 256); longer, the GEMM adds K-block partial sums
//     to C and the bits differ (the example's conv2, 401 rows: 99.23 -> 99.36 % after 4 epochs, seed 1; 99.25 %
//     once its input gradient took the direct kernel too).
//     Measured 2026-12-05 (EPYC Zen 4, 1 thread, F.conv2d medians of 11-15 interleaved, ms default (im2col) ->
//     direct): (64,3,32,32)->16 5x5 2.05 -> 1.40 (1.47x; NumPy im2col baseline 1.9x -> 2.9x),
//     LeNet (64,1,32,32)->6 5x5 0.47 -> 0.23, (64,6,14,14)->16 5x5 0.81 -> 0.51, (64,3,32,32)->32 5x5 3.32 ->
//     2.97, conv1d (32,16,1000)->32 k5 1.92 -> 1.75, k3 p1 1.14 -> 1.10, (32,32,500)->32 k3 1.12 -> 1.05,
//     (32,64,500)->64 k5 p2 6.90 -> 6.51, (64,16,14,14)->32 5x5 p2 (the example's conv2) 3.96 -> 3.56,
//     (64,4,32,32)->16 3x3 p1 0.99 -> 0.88, (32,3,64,64)->16 3x3 p1 1.72 -> 1.39, (64,16,28,28)->32 5x5 p2
//     14.4 -> 14.1; a 7x7 stride-1 stem (16,3,112,112)->64 p3 40.8 -> 35.0 (not chosen: 64 channels).
//     Where it loses (kept on im2col + GEMM by use_direct_mc): few taps per tile (1 channel 3x3 -> 32: 0.49 vs
//     0.62; 5x5 p2 -> 32: 1.01 vs 1.15), narrow rows (OW = 8 with 16-lane tiles: 3.62 vs 4.02), >= 48 output
//     channels on 2-d planes (5x5 3 -> 48: 4.41 vs 4.70, -> 64 p2: 6.68 vs 7.98, 3x3 32 -> 64 on 26x26:
//     15.0 vs 17.4), 'same' convs with few input channels (8 -> 32 3x3 p1: 2.60 vs 2.85), where the flat
//     im2col path writes the GEMM's packed B directly. Its loop is the GEMM micro-kernel's (12 FMAs, 2 loads,
//     6 broadcasts per tap) but runs at ~83% of peak against the GEMM's 95% (unaligned B loads, tile set-up per
//     row piece), plus the waste of the last partial tile (OW = 28: 28 of 32 lanes). 2 threads: the same
//     ratios or better, e.g. 5x5 -> 16 1.19 -> 0.77 ms, conv1d k5 1.91 -> 0.90.
//     Input gradient (stride 1): the same kernel runs the forward correlation of gy, zero-padded by (k-1)*d - p,
//     with the 180-degree-rotated, group-transposed kernel (use_direct_mc_bwd). Measured (1 thread, ms colgrad
//     GEMM + col2im -> direct): conv1d (32,16,1000)->32 k5 1.93 -> 1.65, the example's conv2 (64,16,14,14)->32
//     5x5 p2 4.15 -> 3.59, (64,16,28,28)->32 5x5 p2 15.1 -> 14.2, (64,16,14,14)->16 5x5 p2 2.80 -> 1.78,
//     (64,32,14,14)->32 5x5 p2 8.47 -> 6.94, (32,32,1000)->16 k3 1.35 -> 1.05; 2 threads the same ratios
//     (1.18-1.36x). Not chosen: <= 8 input channels ((64,3,32,32)->16 5x5 1.75 vs 2.11 even with 4-vector tiles;
//     1 channel 0.47 vs 1.03), a 'valid' conv's gradient over a wide zero border ((64,32,12,12)->32 5x5 2.87 vs
//     5.93), 64-128 channels on both sides (ties: 7.80 vs 7.78, 13.4 vs 13.9).
//     Found on the way: at 2 threads the im2col + GEMM forward of small-CKK shapes ran in one of two modes per
//     process phase, e.g. (64,3,32,32)->24 3x3 p1 0.72 ms or 2.2 ms with both threads busy the whole time (4x
//     the CPU time of 1 thread), while the direct kernel and large GEMMs in the same phase were unaffected; not
//     shared packed weights (per-thread copies did not help), not scratch adjacency (4 KiB guards did not help),
//     not torch's libgomp. GEMMs writing a per-thread stage copied into y afterwards: 0.63 ms in all 27 phases of
//     3 processes run alternately with 3 of the old code (9 of 27 phases slow); mnist1 (64,1,28,28)->32 fwd at 2
//     threads 0.61 -> 0.30 ms. Later the old code ran without a slow phase in 7 processes, and the same
//     pattern (2-4x slower phases at 2 threads) showed once in max_pool2d within a full bench_conv run, so the
//     slow mode may be the VM's (a busy SMT sibling?) rather than this code's; the stage stays because it is
//     faster in the normal mode too (0.72-0.77 -> 0.63 ms).
//   * Winograd F(2x2, 3x3) for 3x3 kernels with stride 1, dilation 1, groups 1, padding <= 2, >= 16 input and
//     output channels and 2x2 tiles that waste < 1/4 of the outputs (conv_impl.h winograd_conv): 16 GEMMs
//     M_xi (K x T) = U_xi (K x C) @ V_xi (C x T) over chunks of T tiles, 2.25x fewer multiply-adds than im2col.
//     The input gradient is the same kernel: a stride-1 correlation of gy, zero-padded by 2 - p, with the
//     180-degree-rotated, channel-transposed kernel (K -> C channels onto the H x W input). The weight gradient
//     is the forward's adjoint in the kernel, F(3x3, 2x2) on the same tiles: dW_xi (K x C) += Y_xi (K x T) @
//     V_xi^T with Y = A dy A^T of the tiles' 2x2 gy blocks, summed over fixed slices of chunks. Measured below.
// Threads: the forward and input-gradient loops run over images (Winograd: over fixed chunks of tiles), the
// weight gradient over its slices (Winograd: min(chunks, 16) slices of tile chunks);
// items are handed out dynamically (a descheduled thread on a shared machine does not hold back a fixed
// share) and each runs single-threaded GEMMs; with fewer images than threads the loop is serial and the
// GEMM threads itself. The GEMM never splits K and every output element is owned by one item, so results
// are bitwise identical for any thread count.
// Measured alternatives that lost (1 thread, process CPU time, min of 7, interleaved, loaded 2-core Zen3):
//   several images side by side in one wide GEMM (col (CKK, nb*L), nb*L ~ 1024): (64,32,14,14)->64 3x3 p1
//   fwd 7.9 vs 8.1 ms per-image, (64,3,32,32)->16 5x5 fwd 3.2 vs 2.8 ms -> not kept (no gain for the small
//   planes, extra gather/scatter); L2-sized row bands (96 KiB col): 14x14 fwd 8.8 vs 7.3 ms whole image,
//   (32,64,32,32)->64 fwd 45.8 vs 35.1 ms -> whole-image GEMMs (each extra GEMM call re-packed W then).
// Zen4 2-core, conv-pack branch (process CPU time, min of 3-8 interleaved process rounds; fwd ms):
//   im2col straight into the GEMM's packed-B panels for any geometry: runs cut at panel edges (per-element
//   wrap-around zeros, short pieces): (64,32,14,14) p1 6.20 vs 5.87 ms for im2col + GEMM packing,
//   (32,64,32,32) p1 28.5 vs 27.4, 5x5 2.58 vs 2.32; rows staged in an L1 buffer then copied out in whole
//   16-wide pieces: (64,32,26,26) 15.38 vs 15.11, 14x14 5.88 vs 5.66, 32x32 28.55 vs 26.92 (5x5 2.21 vs 2.26,
//   conv1d 2.22 vs 2.17) -> only the fixed-shift geometries (above) build packed B directly. Extending that
//   to valid convs with OW >= 16 (a piece spans two output rows: two shifted loads blended by a row mask):
//   (64,32,26,26) 14.70 -> 15.15, 5x5 2.02 -> 2.02 (1.91 in another run), 14x14 4.89 -> 4.94 -> not kept.
//   Stride-1 input gradient as the forward conv of gy with the flipped, group-transposed kernel (padding
//   d(k-1) - p; M = Cg, K = Kg*kh*kw) instead of colgrad GEMM + col2im (2026-12-05, kernel min of 20,
//   1 thread, ms col2im vs forward-conv): 14x14 p1 5.08 vs 5.76, 26x26 13.99 vs 23.03, 32x32 p1 25.28 vs
//   25.36, 5x5 1.75 vs 8.96 (M = 3 rows), conv1d 1.88 vs 2.19, (64,1,28,28) 0.45 vs 5.14 -> col2im kept.
//   The fixed-shift packer written as a select on a 0/1 float mask stayed scalar (GCC): 14x14 5.36 -> 6.18.
//   im2col row copies as whole 32-byte pieces with an overlapping last piece instead of the vectorised
//   loop: 1-3% slower on every shape.
//   Larger GEMM K blocks (KC 256 -> 320..512, one block for K = 288): <= 1-3% on these shapes; not changed
//   (global GEMM blocking).
//   Weight gradient building the col band MR rows at a time in an L1 stage and packing it from there as the
//   GEMM's A (no whole col write + re-read; grad weight ms, min of 6 rounds): (64,32,26,26) 15.84 -> 15.69,
//   14x14 5.48 -> 5.54, 32x32 26.29 -> 26.10, 5x5 2.23 -> 2.17, conv1d 2.13 -> 2.15 -> within +-1%, not kept.
//   Weight gradient with dW_g += gy @ col^T instead of dW_g^T += col @ gy^T on these shapes: slower on all
//   (32x32 26.4 vs 27.0, 5x5 2.21 vs 2.49, mnist1 0.54 vs 0.90).
//   Winograd F(2x2, 3x3) forward and input gradient, F(3x3, 2x2) weight gradient (2026-12-05, winograd branch;
//   EPYC Zen 4, medians of 21 reps interleaved in one process; tocha._C.conv2d_forward / conv2d_backward_input /
//   conv2d_backward_weight with set_conv_algo(0) (im2col + GEMM, col2im) vs the default (-1, Winograd on these
//   shapes); ms, 1 thread):
//     shape                       forward                   grad input                grad weight
//     (64,32,26,26)->64           14.76 -> 8.96 (1.65x)     14.49 -> 11.24 (1.29x)    15.77 -> 10.54 (1.50x)
//     (64,32,14,14)->64 p1         4.87 -> 3.16 (1.54x)      5.24 -> 3.41 (1.54x)      5.30 -> 3.52 (1.50x)
//     (32,64,32,32)->64 p1        23.91 -> 13.70 (1.75x)    25.56 -> 13.48 (1.90x)    26.35 -> 15.13 (1.74x)
//     float64 (64,32,26,26)->64   29.02 -> 17.63 (1.65x)    28.98 -> 22.45 (1.29x)    29.88 -> 21.44 (1.39x)
//     (64,1,28,28)->32 (im2col on both sides, same path): 0.47 / 0.48 / 0.53 ms
//   2 threads (a quiet minute; other runs with the other engineer's compiles beside gave multiples of ~4 ms):
//   26x26 7.58 -> 4.60 / 7.35 -> 5.80 / 8.01 -> 5.68, 14x14 p1 2.53 -> 1.65 / 2.71 -> 1.80 / 2.69 -> 1.84,
//   32x32 p1 12.48 -> 7.14 / 13.06 -> 7.04 / 13.49 -> 8.04. bench_conv.py vs PyTorch 2.13 (ratio torch / tocha,
//   fwd and fwd+bwd; 1 thread | 2 threads, the latter under load): (64,32,26,26) 1.49/1.36 | 1.57/1.80 (before:
//   1.06/0.99 | 0.87/0.95), 14x14 p1 1.19/1.46 | 1.26/1.22, 32x32 p1 1.62/1.90 | 1.62/2.14.
//   The tiles of all images form one list cut into fixed chunks of ~256 tiles (V and M ~1.5 MiB; 26x26 fwd
//   9.5-9.7 ms for 128..384 tiles, 10.5 for 64), so 14x14 planes (49 tiles) still give N = 256 GEMMs. Per chunk and
//   input channel the input transform writes V_xi straight into the GEMM's packed-B layout: column combinations
//   d B of the padded rows (read in place from x under a column mask, de-interleaved vector loads), then row
//   combinations a 16-tile panel at a time (consecutive tiles of an image are consecutive in the row-combined
//   arrays, across tile rows). U_xi is packed once per call (gemm_prepacked), the output transform is explicit
//   vectors over tiles with the bias, interleaved into y's rows in registers. What it took, from the first working
//   version (26x26 fwd 17.5 ms, grad input 21.4): explicit vectors for the output transform (GCC left the 16-stream
//   loop scalar; that phase 2.2 -> 0.55 Gcyc per 100 calls), V_xi / M_xi strides one cache line off a multiple of
//   4 KiB (the 16 streams shared L1 sets; with vector row combinations the input transform 0.9 -> 0.48 Gcyc), chunks
//   of 256 instead of 64 tiles, interleaved row stores in registers (9.6 -> 9.2 ms), rows read in place instead of
//   a zero-padded copy (9.1 -> 9.0, grad input 12.0 -> 11.5), panels shared by two images blended under a lane
//   mask instead of a scalar copy (grad input 11.5 -> 11.0). Time split (26x26 fwd, rdtsc per phase): GEMMs 65%
//   (~110 GFLOP/s), input transform 16%, output transform 16% (2/3 of it writing y). The input gradient of the
//   valid 26x26 conv is a pad-2 conv 64 -> 32 channels onto 26x26: 169 tiles per image instead of 144, the input
//   transform over 64 channels: 1.3x only. Weight gradient (26x26, rdtsc): GEMMs 63% (they pack Y_xi and V_xi^T:
//   the transforms run along the tiles, the GEMM's reduction), Y transform 24%, V 13%; chunks of 128..512 tiles
//   all within 2%.
//   Dispatch (first version, same method; ms im2col / Winograd, fwd | grad input): (64,8,28,28)->16 p1 1.45/1.79 |
//   1.76/2.05 (loses); (64,16,28,28)->16 p1 2.86/2.67 | 3.42/2.67; (64,32,26,26)->16 5.82/3.80 | 5.16/4.12;
//   (64,32,5,5)->64 p1 1.16/1.01 | 1.07/1.29 (5x5 planes in 3x3 tiles compute 36 outputs for 25);
//   (64,64,7,7)->64 p1 3.39/2.36 | 3.32/2.33; (64,128,8,8)->128 p1 12.2/7.7 | 12.3/7.6; (8,256,14,14)->256 p1
//   17.9/12.3 | 17.9/12.3; (4,64,56,56)->64 p1 10.3/5.4 | 9.8/5.4; (64,1,28,28)->32 0.59/1.95 | 0.73/2.92 ->
//   Winograd with both channel counts >= 16 and tiles wasting < 1/4 of the outputs, float32 and float64. Grad
//   weight, same rule (ms im2col / Winograd): (64,8,28,28)->16 p1 2.03/2.37 (loses), (64,16,28,28)->16 p1
//   4.08/2.57, (64,32,5,5)->64 p1 0.96/0.93, (64,64,7,7)->64 p1 3.23/2.15, (8,256,14,14)->256 p1 21.4/12.5.
//   Accuracy (float32, max abs error vs float64 torch, randn x and w, |y| up to 90-130): fwd im2col / Winograd
//   26x26 3.7e-5 / 2.5e-5, 14x14 3.9e-5 / 2.4e-5, 32x32 5.9e-5 / 4.4e-5; grad input col2im / Winograd 2.6e-5 /
//   4.1e-5, 2.4e-5 / 3.8e-5, 2.5e-5 / 4.6e-5 (1.4-1.9x; the same ratios with kaiming-scaled weights); grad weight
//   (|dW| up to 450-810) 1.9e-4 / 4.4e-4, 1.2e-4 / 2.6e-4, 2.5e-4 / 3.6e-4 (1.5-2.3x; |x|, gy/100: 1.2-1.7x).
//   F(4x4, 3x3) (points 0, +-1, +-2), a numpy float32 model of the same algorithm on (8,32,26,26)->64: max error
//   5.3e-4 vs 3.8e-5 for torch's float32 conv and 2.1e-5 for F(2x2, 3x3) (14x) -> not used.
//   An earlier F(2x2, 3x3) forward (per-image chunks of ~128 tiles, scalar-ish transforms, plain gemm packing U and
//   V per call) lost: 26x26 13.2 ms, 14x14 p1 5.2-5.35 vs im2col 4.88, 32x32 p1 21.4.
// Choice direct vs im2col, measured (1 thread, min of 5, loaded 2-core Zen3; tocha._C.set_conv_algo(0|1|2)
// forces im2col / direct / Winograd where applicable, -1 the default; script: fwd and x.sum().backward() timed
// alternately per path):
//   depthwise (32,64,32,32) 3x3 groups=64 pad 1: im2col fwd 86.9 ms, fwd+bwd 599 ms | direct 50.9 / 208 ms
//     -> Cg == 1 with groups > 1 uses the direct kernel (Kg = 1 GEMMs are tiny and memory-bound);
//   1-channel input (64,1,28,28)->32 3x3: im2col fwd 1.3 ms, fwd+bwd 73 ms | direct 36.7 / 133 ms
//     -> groups == 1 keeps im2col + GEMM (all 32 filters share one col buffer; the AVX2 GEMM wins).
// Kernel times (1 thread, process CPU time, min of 7; fwd / grad input / grad weight in ms and the
// ratio torch time / tocha time for fwd and fwd+bwd, torch 2.x oneDNN timed in the same process; script:
// calls tocha._C.conv2d_* directly, gradient of random gy; one run each, the machine under varying load,
// so compare the ratios, not the ms across columns):
//   shape                          before (main 2eb0e43+gemm)            after
//   (64,1,28,28)->32 3x3           0.95/1.03/0.92  fwd 1.57x fb 3.77x    1.07/1.17/1.06  fwd 1.73x fb 4.00x
//   (64,32,26,26)->64 3x3          21.6/19.6/21.5  fwd 0.88x fb 1.04x    21.5/19.0/21.4  fwd 0.93x fb 1.15x
//   (64,32,14,14)->64 3x3 p1       8.26/7.73/8.88  fwd 0.85x fb 0.96x    10.1/8.65/9.33  fwd 0.97x fb 1.11x
//   (32,64,32,32)->64 3x3 p1       37.7/36.4/38.6  fwd 0.81x fb 0.91x    39.0/36.2/36.2  fwd 0.79x fb 0.98x
//   (64,3,32,32)->16 5x5           3.64/3.35/3.65  fwd 0.85x fb 1.32x    3.31/2.74/3.19  fwd 0.81x fb 1.24x
//   conv1d (32,16,1000)->32 k5     3.66/3.27/3.38  fwd 0.89x fb 1.16x    3.32/2.89/3.13  fwd 0.96x fb 1.14x
//   depthwise (32,64,32,32) g64    5.44/5.29/9.32  fwd 1.08x fb 1.32x    4.08/4.45/9.54  fwd 2.37x fb 1.39x
//   bias gradient (64,32,26,26): 1.45 ms -> 0.17 ms (16 independent partial sums instead of one add chain).
//   depthwise direct kernels rewritten 2026-12-05 (EPYC Zen 4, 1 thread, min of 30, tocha._C.conv2d_* on
//   (32,64,32,32) 3x3 g64 pad 1): fwd 2.38 -> 1.26 ms, grad input 2.58 -> 1.30 ms, grad weight 6.19 -> 1.5 ms.
//   The planes are copied into zero-padded buffers so the inner loops have no bounds; the forward and the
//   stride-1 input gradient (a correlation of padded gy with the flipped kernel) keep kLanes output columns in
//   registers over all taps instead of a load/add/store per tap; the weight gradient sums several taps at
//   once into independent vector partial sums instead of one scalar chain per tap (conv_impl.h).
// Single-thread arithmetic is GEMM-bound (micro-kernel 55-70% of the cycles, im2col/col2im 10-15%, GEMM
// packing 5-15%; perf); most of the gain is at 2 threads, where per-call scratch allocation (mmap/munmap,
// page faults) and static image shares held the old code back. bench_conv.py, 2 threads, quiet minute,
// fwd+bwd vs torch before -> after: (64,32,26,26) 0.77x -> 1.19x, (64,32,14,14) 0.72x -> 1.16x,
// (32,64,32,32) 0.76x -> 0.94x, 5x5 1.34x -> 1.58x, depthwise 0.51x -> 1.58x, conv1d 0.87x -> 1.01x,
// (64,1,28,28) 2.17x -> 2.83x (2.04x -> 2.18x the NumPy baseline).
// conv-pack branch (Zen4 EPYC 2-core, 1 MiB L2/core; 1 thread, process CPU time, min of 8 interleaved
// process rounds x 6 reps, tocha._C.conv2d_* called directly, float32; ms fwd / grad input / grad weight):
//   shape                          before (15262f0)          after
//   (64,1,28,28)->32 3x3           0.625/0.539/0.574         0.476/0.487/0.533
//   (64,32,26,26)->64 3x3          15.54/14.60/15.92         14.72/14.44/15.72
//   (64,32,14,14)->64 3x3 p1       5.81/5.43/5.34            4.90/5.24/5.32
//   (32,64,32,32)->64 3x3 p1       27.46/26.79/26.77         23.87/25.52/26.29
//   (64,3,32,32)->16 5x5           2.31/1.86/2.22            2.00/1.78/2.18
//   conv1d (32,16,1000)->32 k5     2.23/2.03/2.18            1.83/1.94/2.07
// 2 threads (wall clock, min of 10 interleaved process rounds x 8 reps, quiet minute), same columns:
//   (64,1,28,28) 0.598/0.276/0.295 -> 0.547/0.252/0.273, (64,32,26,26) 8.13/7.31/7.99 -> 7.50/7.21/7.86,
//   14x14 p1 3.04/2.70/2.65 -> 2.51/2.61/2.65, 32x32 p1 14.22/13.39/13.54 -> 12.24/12.71/13.25,
//   5x5 1.17/0.93/1.11 -> 1.02/0.91/1.09, conv1d 1.23/1.01/1.07 -> 0.97/0.97/1.02.
// from: weights packed once per call (fwd, grad input: 1.5-8%), GEMM edge tiles without FMAs on padding
// rows/columns (gemm_avx2.cpp; fwd 1-4%: M = 64 = 10*6 + 4, M = 16, N = 196 = 12*16 + 4), the bias as a GEMM
// K row (fwd 1-20%, most for small CKK: mnist1 0.60 -> 0.48 ms, 5x5 2.16 -> 2.00), packed-B col for the
// fixed-shift geometries (14x14 5.36 -> 4.90, 32x32 25.9 -> 23.9, conv1d 1.98 -> 1.83). vs PyTorch 2.13 in
// the same process (F.conv2d, min of 12, fwd and fwd+bwd ratio torch/tocha, 1 thread | 2 threads):
// (64,1,28,28) 1.82/6.15 | 2.19/5.68, (64,32,26,26) 1.06/0.99 | 0.87/0.95, 14x14 p1 0.87/0.84 | 0.98/0.87,
// 32x32 p1 1.06/1.09 | 0.92/1.08, 5x5 0.62/1.38 | 0.54/1.13, conv1d 0.94/0.97 | 1.08/0.92 (torch's own
// times vary up to 3x between runs on this shared machine). Profile after ((64,32,26,26), perf): fwd
// micro-kernel ~60%, im2col ~11%, B packing ~3%; grad weight: kernel ~59%, im2col ~10%, packing the col
// (A) ~6% and gy^T (B) ~3.5%.
// End-to-end numbers vs PyTorch and NumPy: benchmarks/bench_conv.py (README table).
#define TOCHA_CONV_ISA generic
#include "conv_impl.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace tocha::cpu {

#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 {  // conv_avx2.cpp
void conv_forward(const Array& x, const Array& w, const Array* bias, const ConvParams& p, Array& y);
void conv_backward_input(const Array& gy, const Array& w, const ConvParams& p, Array& dx);
void conv_backward_weight(const Array& x, const Array& gy, const ConvParams& p, Array& dw);
void conv_backward_bias(const Array& gy, Array& db);
void unfold(const Array& x, int64_t kh, int64_t kw, const ConvParams& p, Array& out);
void fold(const Array& cols, int64_t kh, int64_t kw, const ConvParams& p, Array& out);
}  // namespace avx2
#define TOCHA_CONV_DISPATCH(fn, ...) (cpu_has_avx2() ? avx2::fn(__VA_ARGS__) : generic::fn(__VA_ARGS__))
#else
#define TOCHA_CONV_DISPATCH(fn, ...) generic::fn(__VA_ARGS__)
#endif

namespace {

int g_conv_algo = -1;
int64_t g_conv_band = 0;

using generic::out_size;

std::string params_str(const ConvParams& p) {
  return "stride=(" + std::to_string(p.sh) + ", " + std::to_string(p.sw) + "), padding=(" +
         std::to_string(p.ph) + ", " + std::to_string(p.pw) + "), dilation=(" + std::to_string(p.dh) + ", " +
         std::to_string(p.dw) + ")";
}

void check_params(const ConvParams& p, const char* op) {
  if (p.sh <= 0 || p.sw <= 0)
    throw ValueError(std::string("[") + op + "] stride must be positive, got " + params_str(p));
  if (p.dh <= 0 || p.dw <= 0)
    throw ValueError(std::string("[") + op + "] dilation must be positive, got " + params_str(p));
  if (p.ph < 0 || p.pw < 0)
    throw ValueError(std::string("[") + op + "] padding must be non-negative, got " + params_str(p));
  if (p.groups <= 0)
    throw ValueError(std::string("[") + op + "] groups must be positive, got " + std::to_string(p.groups));
}

// Output spatial size; throws when the (dilated) kernel is larger than the padded input.
std::pair<int64_t, int64_t> out_hw(int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p,
                                   const char* op) {
  const int64_t eh = p.dh * (kh - 1) + 1, ew = p.dw * (kw - 1) + 1;
  if (kh <= 0 || kw <= 0)
    throw ValueError(std::string("[") + op + "] kernel size must be positive, got (" + std::to_string(kh) +
                     ", " + std::to_string(kw) + ")");
  if (H + 2 * p.ph < eh || W + 2 * p.pw < ew)
    throw ValueError(std::string("[") + op + "] kernel size (" + std::to_string(eh) + ", " + std::to_string(ew) +
                     ") (dilated) can't be greater than the padded input size (" + std::to_string(H + 2 * p.ph) +
                     ", " + std::to_string(W + 2 * p.pw) + ")");
  return {out_size(H, kh, p.sh, p.ph, p.dh), out_size(W, kw, p.sw, p.pw, p.dw)};
}

void check_4d(const Array& a, const char* op, const char* what) {
  if (a.ndim() != 4)
    throw ValueError(std::string("[") + op + "] expected a 4-d " + what + " (N, C, H, W), got shape " +
                     shape_str(a.shape));
}

void check_float_same(const Array& a, const Array& b, const char* op) {
  if (!is_floating(a.dtype))
    throw TypeError(std::string("[") + op + "] expected a floating-point tensor, got " + dtype_name(a.dtype));
  if (a.dtype != b.dtype)
    throw TypeError(std::string("[") + op + "] expected input and weight to have the same dtype, got " +
                    dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
}

// validates x/w shapes against groups and returns (OH, OW)
std::pair<int64_t, int64_t> check_conv(const Array& x, const Array& w, const ConvParams& p, const char* op) {
  check_params(p, op);
  check_4d(x, op, "input");
  if (w.ndim() != 4)
    throw ValueError(std::string("[") + op + "] expected a 4-d weight (out_channels, in_channels/groups, kh, kw), "
                     "got shape " + shape_str(w.shape));
  const int64_t C = x.shape[1], K = w.shape[0];
  if (K % p.groups != 0)
    throw ValueError(std::string("[") + op + "] out_channels (" + std::to_string(K) +
                     ") must be divisible by groups (" + std::to_string(p.groups) + "), weight shape " +
                     shape_str(w.shape));
  if (w.shape[1] * p.groups != C)
    throw ValueError(std::string("[") + op + "] input " + shape_str(x.shape) + " has " + std::to_string(C) +
                     " channels but weight " + shape_str(w.shape) + " with groups=" + std::to_string(p.groups) +
                     " expects " + std::to_string(w.shape[1] * p.groups));
  return out_hw(x.shape[2], x.shape[3], w.shape[2], w.shape[3], p, op);
}

}  // namespace

void set_conv_algo(int algo) { g_conv_algo = algo; }
namespace {
thread_local int t_last_fwd_algo = -1;
}
void note_conv_forward_algo(int algo) { t_last_fwd_algo = algo; }
int last_conv_forward_algo() { return t_last_fwd_algo; }
int conv_algo_override() { return g_conv_algo; }
void set_conv_band_bytes(int64_t bytes) { g_conv_band = bytes; }
int64_t conv_band_override() { return g_conv_band; }

Array conv2d_forward(const Array& x_, const Array& w_, const std::optional<Array>& bias_, const ConvParams& p) {
  const char* op = "conv2d";
  check_float_same(x_, w_, op);
  auto [OH, OW] = check_conv(x_, w_, p, op);
  Array x = x_.contiguous(), w = w_.contiguous();
  Array b;
  if (bias_) {
    if (bias_->ndim() != 1 || bias_->shape[0] != w.shape[0])
      throw ValueError(std::string("[conv2d] expected bias of shape (") + std::to_string(w.shape[0]) +
                       ",), got " + shape_str(bias_->shape));
    if (bias_->dtype != x.dtype) throw TypeError("[conv2d] bias dtype must match input dtype");
    b = bias_->contiguous();
  }
  Array y = Array::empty({x.shape[0], w.shape[0], OH, OW}, x.dtype);
  TOCHA_CONV_DISPATCH(conv_forward, x, w, bias_ ? &b : nullptr, p, y);
  return y;
}

Array conv2d_backward_input(const Array& gy_, const Array& w_, int64_t H, int64_t W, const ConvParams& p) {
  const char* op = "conv2d_backward_input";
  check_float_same(gy_, w_, op);
  check_params(p, op);
  check_4d(gy_, op, "grad_output");
  if (w_.ndim() != 4) throw ValueError("[conv2d_backward_input] expected a 4-d weight, got " + shape_str(w_.shape));
  const int64_t K = w_.shape[0];
  if (gy_.shape[1] != K || K % p.groups != 0)
    throw ValueError("[conv2d_backward_input] grad_output " + shape_str(gy_.shape) + " does not match weight " +
                     shape_str(w_.shape) + " with groups=" + std::to_string(p.groups));
  if (H < 0 || W < 0) throw ValueError("[conv2d_backward_input] negative input size");
  auto [OH, OW] = out_hw(H, W, w_.shape[2], w_.shape[3], p, op);
  if (OH != gy_.shape[2] || OW != gy_.shape[3])
    throw ValueError("[conv2d_backward_input] grad_output " + shape_str(gy_.shape) + " does not match input size (" +
                     std::to_string(H) + ", " + std::to_string(W) + ") with " + params_str(p));
  Array gy = gy_.contiguous(), w = w_.contiguous();
  Array dx = Array::empty({gy.shape[0], w.shape[1] * p.groups, H, W}, gy.dtype);
  TOCHA_CONV_DISPATCH(conv_backward_input, gy, w, p, dx);
  return dx;
}

Array conv2d_backward_weight(const Array& x_, const Array& gy_, int64_t kh, int64_t kw, const ConvParams& p) {
  const char* op = "conv2d_backward_weight";
  check_float_same(x_, gy_, op);
  check_params(p, op);
  check_4d(x_, op, "input");
  check_4d(gy_, op, "grad_output");
  const int64_t C = x_.shape[1], K = gy_.shape[1];
  if (C % p.groups != 0 || K % p.groups != 0 || gy_.shape[0] != x_.shape[0])
    throw ValueError("[conv2d_backward_weight] input " + shape_str(x_.shape) + " and grad_output " +
                     shape_str(gy_.shape) + " are inconsistent with groups=" + std::to_string(p.groups));
  auto [OH, OW] = out_hw(x_.shape[2], x_.shape[3], kh, kw, p, op);
  if (OH != gy_.shape[2] || OW != gy_.shape[3])
    throw ValueError("[conv2d_backward_weight] grad_output " + shape_str(gy_.shape) + " does not match input " +
                     shape_str(x_.shape) + " with " + params_str(p));
  Array x = x_.contiguous(), gy = gy_.contiguous();
  Array dw = Array::empty({K, C / p.groups, kh, kw}, x.dtype);
  TOCHA_CONV_DISPATCH(conv_backward_weight, x, gy, p, dw);
  return dw;
}


Array conv2d_backward_bias(const Array& gy_) {
  check_4d(gy_, "conv2d_backward_bias", "grad_output");
  Array gy = gy_.contiguous();
  const int64_t K = gy.shape[1];
  Array db = Array::empty({K}, gy.dtype);
  TOCHA_CONV_DISPATCH(conv_backward_bias, gy, db);
  return db;
}

Array unfold_forward(const Array& x_, int64_t kh, int64_t kw, const ConvParams& p) {
  const char* op = "unfold";
  check_params(p, op);
  check_4d(x_, op, "input");
  if (!is_floating(x_.dtype)) throw TypeError("[unfold] expected a floating-point tensor");
  auto [OH, OW] = out_hw(x_.shape[2], x_.shape[3], kh, kw, p, op);
  Array x = x_.contiguous();
  Array out = Array::empty({x.shape[0], x.shape[1] * kh * kw, OH * OW}, x.dtype);
  TOCHA_CONV_DISPATCH(unfold, x, kh, kw, p, out);
  return out;
}

Array fold_forward(const Array& cols_, int64_t H, int64_t W, int64_t kh, int64_t kw, const ConvParams& p) {
  const char* op = "fold";
  check_params(p, op);
  if (cols_.ndim() != 3)
    throw ValueError("[fold] expected a 3-d input (N, C*kh*kw, L), got shape " + shape_str(cols_.shape));
  if (!is_floating(cols_.dtype)) throw TypeError("[fold] expected a floating-point tensor");
  if (kh <= 0 || kw <= 0 || cols_.shape[1] % (kh * kw) != 0)
    throw ValueError("[fold] expected size of input's dimension 1 " + shape_str(cols_.shape) +
                     " to be divisible by the product of kernel_size (" + std::to_string(kh) + ", " +
                     std::to_string(kw) + ")");
  auto [OH, OW] = out_hw(H, W, kh, kw, p, op);
  if (OH * OW != cols_.shape[2])
    throw ValueError("[fold] given output_size=(" + std::to_string(H) + ", " + std::to_string(W) +
                     "), kernel_size=(" + std::to_string(kh) + ", " + std::to_string(kw) + "), " + params_str(p) +
                     ", expected size of input's dimension 2 to match the number of sliding blocks " +
                     std::to_string(OH) + " * " + std::to_string(OW) + " = " + std::to_string(OH * OW) +
                     ", but got input shape " + shape_str(cols_.shape));
  Array cols = cols_.contiguous();
  Array out = Array::empty({cols.shape[0], cols.shape[1] / (kh * kw), H, W}, cols.dtype);
  TOCHA_CONV_DISPATCH(fold, cols, kh, kw, p, out);
  return out;
}

}  // namespace tocha::cpu
