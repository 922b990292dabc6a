/* The last pass of ESPCN's RGB frame (inference/espcn_onnx.py): each colour from Y's part and the chroma's
 * phases (YCbCr -> RGB at 0 .. 255), rounded half to even and clamped to 0 .. 255, written as 8-bit
 * interleaved RGB at the output's size. Built and called by inference/espcn_onnx.py (ctypes) over bands
 * of LR rows.
 *
 * Why C: in ONNX Runtime and PyTorch the colour sums, the rounding, the pixel shuffle and the interleave
 * are several passes over the 6.2 M values of a 1080p frame; here each input value is read once and each
 * byte written once. The float32 operations are PyTorch's, in its order (built without FMA contraction:
 * inference/c_kernels.py), so both give the same bytes.
 */
#include <math.h>

static unsigned char level(float v) {
    v = nearbyintf(v); /* half to even in the default rounding mode, as torch.round */
    return (unsigned char)(v > 0.f ? (v < 255.f ? v : 255.f) : 0.f);
}

/* y: (s*s, h, w), phase p*s + q; chroma: (2*s*s, h, w), Cb's phases then Cr's; mix: per colour the factor of
 * Cb, of Cr and the offset; out: (s*h, s*w, 3). LR rows [row0, row1). */
void rgb_frame_rows(const float *restrict y, const float *restrict chroma, const float *restrict mix, long h,
                    long w, long s, long row0, long row1, unsigned char *restrict out) {
    long plane = h * w, stride = s * 3;
    const float m[9] = {mix[0], mix[1], mix[2], mix[3], mix[4], mix[5], mix[6], mix[7], mix[8]};
    for (long i = row0; i < row1; i++) {
        for (long p = 0; p < s; p++) {
            unsigned char *row = out + (s * i + p) * s * w * 3;
            for (long q = 0; q < s; q++) {
                long k = p * s + q;
                const float *luma = y + k * plane + i * w;
                const float *cb = chroma + k * plane + i * w, *cr = cb + s * s * plane;
                unsigned char *o = row + q * 3;
                for (long j = 0; j < w; j++) {
                    for (long c = 0; c < 3; c++)
                        o[j * stride + c] = level(luma[j] + cb[j] * m[3 * c] + cr[j] * m[3 * c + 1] + m[3 * c + 2]);
                }
            }
        }
    }
}
