/* SSIM (Wang et al. 2004: 11x11 Gaussian window, 'valid' map) and the squared error of two images, in one
 * pass over a band of rows, in float64. Built and called by inference/ssim_kernel.py (ctypes).
 *
 * Why C: eager PyTorch filters each of SSIM's four maps with 22 shifted passes over memory; here every input
 * row is read once, the four maps of the last 11 rows stay in a ring buffer in the caches, and the vertical
 * sum, the horizontal sum and the SSIM formula run over one row at a time (loops the compiler vectorises).
 *
 * The scored plane is offset + sum_c weight[c] * x_c over `channels` input planes (float32 or float64),
 * formed in float64: one channel with weight 1 scores that channel, three with BT.601 weights score luma.
 * The maps are those of inference/metrics.py: s = a + b and d = a - b, their means and mean squares; with
 * c1, c2 doubled, 2 mu_a mu_b + C1 = (mu_s^2 - mu_d^2 + c1) / 2 and so on, the factors 2 cancelling.
 */
#include <stdlib.h>

#define RADIUS 5
#define TAPS (2 * RADIUS + 1)

typedef struct {
    const void *data; /* first value of the band's first row, channel 0 */
    int float32;      /* values are float (else double) */
    long channels, channel_stride, row_stride; /* strides in values; columns are contiguous */
    const double *weights;
    double offset;
} Image;

/* Row `i` of the scored plane into out[0, w). */
static void plane_row(const Image *im, long i, long w, double *out) {
    for (long j = 0; j < w; j++) out[j] = im->offset;
    for (long c = 0; c < im->channels; c++) {
        long start = c * im->channel_stride + i * im->row_stride;
        double weight = im->weights[c];
        if (im->float32) {
            const float *x = (const float *)im->data + start;
            for (long j = 0; j < w; j++) out[j] += weight * (double)x[j];
        } else {
            const double *x = (const double *)im->data + start;
            for (long j = 0; j < w; j++) out[j] += weight * x[j];
        }
    }
}

static Image image(const void *data, int float32, long channels, long channel_stride, long row_stride,
                   const double *weights, double offset) {
    Image im = {data, float32, channels, channel_stride, row_stride, weights, offset};
    return im;
}

/* Sum of squared differences of the two scored planes over `rows` rows of `w` values. */
int sse_band(const void *a, const void *b, int float32, long channels, long channel_stride, long row_stride,
             const double *weights, double offset, long rows, long w, double *sse) {
    Image ia = image(a, float32, channels, channel_stride, row_stride, weights, offset);
    Image ib = image(b, float32, channels, channel_stride, row_stride, weights, offset);
    double *x = malloc(sizeof(double) * w), *y = malloc(sizeof(double) * w), *cols = calloc(w, sizeof(double));
    if (!x || !y || !cols) {
        free(x); free(y); free(cols);
        return 1;
    }
    for (long i = 0; i < rows; i++) {
        plane_row(&ia, i, w, x);
        plane_row(&ib, i, w, y);
        for (long j = 0; j < w; j++) cols[j] += (x[j] - y[j]) * (x[j] - y[j]);
    }
    double total = 0.0;
    for (long j = 0; j < w; j++) total += cols[j];
    *sse += total;
    free(x); free(y); free(cols);
    return 0;
}

/* Output rows [0, rows_out) of the band of rows_out + 10 input rows starting at `a`, `b`. Adds the sum of
 * the band's SSIM map to *ssim_sum and the squared error of its first `sse_rows` input rows to *sse.
 * `g`: the 11 normalised taps. Returns 0, or 1 when out of memory. */
int ssim_band(const void *a, const void *b, int float32, long channels, long channel_stride, long row_stride,
              const double *weights, double offset, long rows_out, long w, const double *g, double c1, double c2,
              long sse_rows, double *ssim_sum, double *sse) {
    Image ia = image(a, float32, channels, channel_stride, row_stride, weights, offset);
    Image ib = image(b, float32, channels, channel_stride, row_stride, weights, offset);
    const long out_w = w - 2 * RADIUS;
    double *x = malloc(sizeof(double) * 2 * w), *y = x ? x + w : NULL;
    double *ring = malloc(sizeof(double) * 4 * TAPS * w); /* s, d, s^2, d^2 of the last 11 input rows */
    double *vertical = malloc(sizeof(double) * 4 * w);
    double *filtered = malloc(sizeof(double) * 4 * out_w);
    double *ssim_cols = calloc(out_w, sizeof(double)); /* per-column sums: vectorisable, unlike a scalar */
    double *sse_cols = calloc(w, sizeof(double));
    if (!x || !ring || !vertical || !filtered || !ssim_cols || !sse_cols) {
        free(x); free(ring); free(vertical); free(filtered); free(ssim_cols); free(sse_cols);
        return 1;
    }
    for (long i = 0; i < rows_out + 2 * RADIUS; i++) {
        plane_row(&ia, i, w, x);
        plane_row(&ib, i, w, y);
        double *s = ring + (i % TAPS) * 4 * w, *d = s + w, *ss = s + 2 * w, *dd = s + 3 * w;
        for (long j = 0; j < w; j++) {
            s[j] = x[j] + y[j];
            d[j] = x[j] - y[j];
            ss[j] = s[j] * s[j];
            dd[j] = d[j] * d[j];
        }
        if (i < sse_rows)
            for (long j = 0; j < w; j++) sse_cols[j] += dd[j];
        if (i < 2 * RADIUS) continue;

        const double *r[TAPS]; /* the 11 rows of this output row's window, top to bottom */
        for (int k = 0; k < TAPS; k++) r[k] = ring + ((i - 2 * RADIUS + k) % TAPS) * 4 * w;
        for (long j = 0; j < 4 * w; j++) /* the window is symmetric: tap k and tap 10 - k share a weight */
            vertical[j] = g[5] * r[5][j] + g[0] * (r[0][j] + r[10][j]) + g[1] * (r[1][j] + r[9][j]) +
                          g[2] * (r[2][j] + r[8][j]) + g[3] * (r[3][j] + r[7][j]) + g[4] * (r[4][j] + r[6][j]);
        for (int m = 0; m < 4; m++) {
            const double *q = vertical + m * w;
            double *o = filtered + m * out_w;
            for (long j = 0; j < out_w; j++)
                o[j] = g[5] * q[j + 5] + g[0] * (q[j] + q[j + 10]) + g[1] * (q[j + 1] + q[j + 9]) +
                       g[2] * (q[j + 2] + q[j + 8]) + g[3] * (q[j + 3] + q[j + 7]) + g[4] * (q[j + 4] + q[j + 6]);
        }
        const double *mu_s = filtered, *mu_d = filtered + out_w, *ms = filtered + 2 * out_w,
                     *md = filtered + 3 * out_w;
        for (long j = 0; j < out_w; j++) {
            double mu_ss = mu_s[j] * mu_s[j], mu_dd = mu_d[j] * mu_d[j];
            double var_s = ms[j] - mu_ss, var_d = md[j] - mu_dd;
            ssim_cols[j] += (mu_ss - mu_dd + c1) * (var_s - var_d + c2) / ((mu_ss + mu_dd + c1) * (var_s + var_d + c2));
        }
    }
    double total = 0.0, squared = 0.0;
    for (long j = 0; j < out_w; j++) total += ssim_cols[j];
    for (long j = 0; j < w; j++) squared += sse_cols[j];
    *ssim_sum += total;
    *sse += squared;
    free(x); free(ring); free(vertical); free(filtered); free(ssim_cols); free(sse_cols);
    return 0;
}
