/* Heston Monte Carlo: one algorithm, compiled as CUDA C++ (CuPy/NVRTC) and as OpenCL C.
 *
 * The backend prepends a preamble that defines the dialect macros (KERNEL, GLOBAL,
 * LOCAL_MEM, BARRIER, GID, GSIZE, LID, GROUP_ID, DEVICE, MULHI, SINCOSPI, uint32,
 * uint64), REAL (float or double), ACC (the accumulator type), REAL_IS_DOUBLE,
 * SCHEME (1 = Andersen QE with martingale correction, 2 = full-truncation Euler),
 * ANTITHETIC (0/1) and BLOCK (work-group size, a power of two).
 *
 * Threads own path *pairs*: path A and path B share a thread.  With ANTITHETIC the
 * B path uses the negated normals and the reflected uniform of A; without it B
 * draws its own stream (counter word 3 = 1).  Random numbers are Philox4x32-10
 * keyed by the seed, counter (step, pair low, pair high, stream), so every backend
 * (and the Numba CPU port in backends/cpu_numba.py) sees exactly the same uniforms.
 * Log-prices are accumulated from 0 so float32 keeps its resolution.
 */

#define R(x) ((REAL)(x))

typedef struct { uint32 v0, v1, v2, v3; } ctr4;

/* Philox4x32-10 (Salmon et al. 2011, Random123). */
DEVICE ctr4 philox4x32_10(ctr4 c, uint32 k0, uint32 k1) {
    for (int i = 0; i < 10; ++i) {
        const uint32 hi0 = MULHI(0xD2511F53u, c.v0), lo0 = 0xD2511F53u * c.v0;
        const uint32 hi1 = MULHI(0xCD9E8D57u, c.v2), lo1 = 0xCD9E8D57u * c.v2;
        ctr4 n;
        n.v0 = hi1 ^ c.v1 ^ k0;
        n.v1 = lo1;
        n.v2 = hi0 ^ c.v3 ^ k1;
        n.v3 = lo0;
        c = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

DEVICE ctr4 draw(uint32 step, uint64 pair, uint32 stream, uint32 k0, uint32 k1) {
    ctr4 c;
    c.v0 = step;
    c.v1 = (uint32)(pair & 0xFFFFFFFFu);
    c.v2 = (uint32)(pair >> 32);
    c.v3 = stream;
    return philox4x32_10(c, k0, k1);
}

/* Uniforms strictly inside (0, 1), exact in REAL, symmetric: 1 - u is in the same set,
 * so the antithetic reflection is exact too. */
DEVICE REAL u01(uint32 x) {
#if REAL_IS_DOUBLE
    return ((REAL)x + 0.5) * 2.3283064365386962890625e-10;
#else
    return (REAL)(x >> 9) * 1.1920928955078125e-07f + 5.9604644775390625e-08f;
#endif
}

DEVICE void box_muller(uint32 a, uint32 b, REAL* z0, REAL* z1) {
    const REAL rad = sqrt(R(-2.0) * log(u01(a)));
    REAL s, c;
    SINCOSPI(R(2.0) * u01(b), &s, &c);
    *z0 = rad * c;
    *z1 = rad * s;
}

typedef struct {
    REAL mu_dt;      /* drift of ln S per step, (r - q) dt or the user drift */
    REAL kappa_dt, theta, sigma_sqdt, sqdt, half_dt, rho, rho_bar;   /* Euler */
    REAL ex, c1, c2, k0, k1, k2, k3, k4, a_m;              /* QE: e^{-kappa dt}, ... */
} consts_t;

/* Andersen (2008) QE step with martingale correction, for one path. */
DEVICE void qe_step(REAL* x, REAL* v, REAL zv, REAL u, REAL zx, const consts_t* k) {
    const REAL vt = *v;
    const REAL m = k->theta + (vt - k->theta) * k->ex;
    const REAL s2 = vt * k->c1 + k->c2;
    REAL vn = R(0.0), lnm = R(0.0);
    int corrected = 0;
    if (m > R(0.0)) {
        const REAL psi = s2 / (m * m);
        if (psi <= R(1.5)) {
            const REAL inv = R(2.0) / psi;
            const REAL b2 = inv - R(1.0) + sqrt(inv * (inv - R(1.0)));
            const REAL a = m / (R(1.0) + b2);
            const REAL zb = sqrt(b2) + zv;
            vn = a * zb * zb;
            const REAL den = R(1.0) - R(2.0) * k->a_m * a;
            if (den > R(0.0)) {
                lnm = k->a_m * b2 * a / den - R(0.5) * log(den);
                corrected = 1;
            }
        } else {
            const REAL p = (psi - R(1.0)) / (psi + R(1.0));
            const REAL beta = (R(1.0) - p) / m;
            vn = (u <= p) ? R(0.0) : log((R(1.0) - p) / (R(1.0) - u)) / beta;
            if (beta > k->a_m) {
                lnm = log(p + beta * (R(1.0) - p) / (beta - k->a_m));
                corrected = 1;
            }
        }
    }
    /* K0* = -ln M - (K1 + K3/2) V_t makes E[S_{t+dt} | S_t, V_t] = S_t e^{mu dt} exactly;
     * where M does not exist (extreme parameters) fall back to Andersen's plain K0. */
    const REAL k0 = corrected ? -lnm - (k->k1 + R(0.5) * k->k3) * vt : k->k0;
    *x += k->mu_dt + k0 + k->k1 * vt + k->k2 * vn + sqrt(k->k3 * vt + k->k4 * vn) * zx;
    *v = vn;
}

/* Full-truncation Euler (Lord, Koekkoek, van Dijk 2010) on ln S, for one path. */
DEVICE void euler_step(REAL* x, REAL* v, REAL z1, REAL z2, const consts_t* k) {
    const REAL vp = fmax(*v, R(0.0));
    const REAL sv = sqrt(vp);
    *x += k->mu_dt - k->half_dt * vp + k->sqdt * sv * z1;
    *v += k->kappa_dt * (k->theta - vp) + k->sigma_sqdt * sv * (k->rho * z1 + k->rho_bar * z2);
}

/* Simulate both paths of pair `pair`; returns final log-returns and (if track) extremes. */
DEVICE void simulate_pair(uint64 pair, uint32 n_steps, REAL v0, const consts_t* k,
                          uint32 k0, uint32 k1, int track,
                          REAL* xa_out, REAL* xb_out, REAL* mina, REAL* maxa,
                          REAL* minb, REAL* maxb) {
    REAL xa = R(0.0), va = v0, xb = R(0.0), vb = v0;
    REAL lo_a = R(0.0), hi_a = R(0.0), lo_b = R(0.0), hi_b = R(0.0);
#if SCHEME == 1
    for (uint32 j = 0; j < n_steps; ++j) {
        const ctr4 ra = draw(j, pair, 0u, k0, k1);
        REAL zv, zx;
        box_muller(ra.v0, ra.v1, &zv, &zx);
        const REAL u = u01(ra.v2);
        qe_step(&xa, &va, zv, u, zx, k);
#if ANTITHETIC
        qe_step(&xb, &vb, -zv, R(1.0) - u, -zx, k);
#else
        const ctr4 rb = draw(j, pair, 1u, k0, k1);
        REAL zvb, zxb;
        box_muller(rb.v0, rb.v1, &zvb, &zxb);
        qe_step(&xb, &vb, zvb, u01(rb.v2), zxb, k);
#endif
        if (track) {
            lo_a = fmin(lo_a, xa); hi_a = fmax(hi_a, xa);
            lo_b = fmin(lo_b, xb); hi_b = fmax(hi_b, xb);
        }
    }
#else
    /* One Philox block feeds two Euler steps (two normals each). */
    for (uint32 j = 0; j < n_steps; j += 2) {
        const ctr4 ra = draw(j >> 1, pair, 0u, k0, k1);
        REAL z1, z2;
#if !ANTITHETIC
        const ctr4 rb = draw(j >> 1, pair, 1u, k0, k1);
        REAL w1, w2;
#endif
        box_muller(ra.v0, ra.v1, &z1, &z2);
        euler_step(&xa, &va, z1, z2, k);
#if ANTITHETIC
        euler_step(&xb, &vb, -z1, -z2, k);
#else
        box_muller(rb.v0, rb.v1, &w1, &w2);
        euler_step(&xb, &vb, w1, w2, k);
#endif
        if (track) {
            lo_a = fmin(lo_a, xa); hi_a = fmax(hi_a, xa);
            lo_b = fmin(lo_b, xb); hi_b = fmax(hi_b, xb);
        }
        if (j + 1 < n_steps) {
            box_muller(ra.v2, ra.v3, &z1, &z2);
            euler_step(&xa, &va, z1, z2, k);
#if ANTITHETIC
            euler_step(&xb, &vb, -z1, -z2, k);
#else
            box_muller(rb.v2, rb.v3, &w1, &w2);
            euler_step(&xb, &vb, w1, w2, k);
#endif
            if (track) {
                lo_a = fmin(lo_a, xa); hi_a = fmax(hi_a, xa);
                lo_b = fmin(lo_b, xb); hi_b = fmax(hi_b, xb);
            }
        }
    }
#endif
    *xa_out = xa; *xb_out = xb;
    *mina = lo_a; *maxa = hi_a; *minb = lo_b; *maxb = hi_b;
}

#define CONSTS_ARGS REAL mu_dt, REAL kappa_dt, REAL theta, REAL sigma_sqdt, REAL sqdt, REAL half_dt, \
    REAL rho, REAL rho_bar, REAL ex, REAL c1, REAL c2, REAL qk0, REAL qk1, REAL qk2, \
    REAL qk3, REAL qk4, REAL a_m

#define FILL_CONSTS(k) \
    k.mu_dt = mu_dt; k.kappa_dt = kappa_dt; k.theta = theta; k.sigma_sqdt = sigma_sqdt; \
    k.sqdt = sqdt; k.half_dt = half_dt; k.rho = rho; k.rho_bar = rho_bar; k.ex = ex; k.c1 = c1; k.c2 = c2; \
    k.k0 = qk0; k.k1 = qk1; k.k2 = qk2; k.k3 = qk3; k.k4 = qk4; k.a_m = a_m

/* European price: per-work-group sums of y (discounted payoff, pair mean), c (control:
 * S_T/F - 1, pair mean, known mean 0) and their squares/cross product, in ACC. */
KERNEL void heston_price(const uint64 n_pairs, const uint32 n_steps, const REAL v0,
                         CONSTS_ARGS, const REAL s0, const REAL strike, const REAL disc,
                         const REAL mu_t, const int is_call, const uint32 key0,
                         const uint32 key1, GLOBAL ACC* partials) {
    consts_t k;
    FILL_CONSTS(k);
    ACC sy = 0, syy = 0, sc = 0, scc = 0, syc = 0;
    for (uint64 i = GID; i < n_pairs; i += GSIZE) {
        REAL xa, xb, d0, d1, d2, d3;
        simulate_pair(i, n_steps, v0, &k, key0, key1, 0, &xa, &xb, &d0, &d1, &d2, &d3);
        const REAL sa = s0 * exp(xa), sb = s0 * exp(xb);
        const REAL pa = is_call ? fmax(sa - strike, R(0.0)) : fmax(strike - sa, R(0.0));
        const REAL pb = is_call ? fmax(sb - strike, R(0.0)) : fmax(strike - sb, R(0.0));
        const ACC y = (ACC)(R(0.5) * disc * (pa + pb));
        const ACC c = (ACC)(R(0.5) * (expm1(xa - mu_t) + expm1(xb - mu_t)));
        sy += y; syy += y * y; sc += c; scc += c * c; syc += y * c;
    }
    LOCAL_MEM ACC sh[5 * BLOCK];
    const uint32 lid = LID;
    sh[lid] = sy; sh[BLOCK + lid] = syy; sh[2 * BLOCK + lid] = sc;
    sh[3 * BLOCK + lid] = scc; sh[4 * BLOCK + lid] = syc;
    BARRIER();
    for (uint32 s = BLOCK / 2; s > 0; s >>= 1) {
        if (lid < s) {
            for (int j = 0; j < 5; ++j) sh[j * BLOCK + lid] += sh[j * BLOCK + lid + s];
        }
        BARRIER();
    }
    if (lid == 0) {
        for (int j = 0; j < 5; ++j) partials[GROUP_ID * 5 + j] = sh[j * BLOCK];
    }
}

/* Paths for probability of profit: terminal price and running min/max price of every
 * path (A paths at [0, n_pairs), B paths at [n_pairs, 2 n_pairs)). */
KERNEL void heston_paths(const uint64 n_pairs, const uint32 n_steps, const REAL v0,
                         CONSTS_ARGS, const REAL s0, const uint32 key0, const uint32 key1,
                         GLOBAL REAL* s_end, GLOBAL REAL* s_min, GLOBAL REAL* s_max) {
    consts_t k;
    FILL_CONSTS(k);
    for (uint64 i = GID; i < n_pairs; i += GSIZE) {
        REAL xa, xb, la, ha, lb, hb;
        simulate_pair(i, n_steps, v0, &k, key0, key1, 1, &xa, &xb, &la, &ha, &lb, &hb);
        s_end[i] = s0 * exp(xa); s_end[n_pairs + i] = s0 * exp(xb);
        s_min[i] = s0 * exp(la); s_min[n_pairs + i] = s0 * exp(lb);
        s_max[i] = s0 * exp(ha); s_max[n_pairs + i] = s0 * exp(hb);
    }
}
