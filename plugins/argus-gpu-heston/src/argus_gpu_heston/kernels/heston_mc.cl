/* Heston Monte Carlo: one algorithm, compiled as CUDA C++ (CuPy/NVRTC) and as OpenCL C.
 *
 * The backend prepends a preamble that defines the dialect macros (KERNEL, GLOBAL,
 * LOCAL_MEM, BARRIER, GID, GSIZE, LID, GROUP_ID, DEVICE, MULHI, SINCOSPI, uint32,
 * uint64), REAL (float or double), ACC (the accumulator type), REAL_IS_DOUBLE,
 * SCHEME (1 = Andersen QE with martingale correction, 2 = full-truncation Euler),
 * ANTITHETIC (0/1), CONDITIONAL (0/1: the price kernel averages E[payoff | variance
 * path] instead of the payoff) and BLOCK (work-group size, a power of two).
 *
 * Threads own path *pairs*: path A and path B share a thread.  With ANTITHETIC the
 * B path uses the negated normals and the reflected uniform of A; without it B
 * draws its own stream (counter word 3 = 1).  Random numbers are Philox4x32-10
 * keyed by the seed, counter (step, pair low, pair high, stream), so every backend
 * (and the Numba CPU port in backends/cpu_numba.py) sees exactly the same uniforms.
 * Log-prices are accumulated from 0 so float32 keeps its resolution.
 *
 * Every step advances ln S by drift + sqrt(var) Z with Z independent of the variance
 * path, so given that path ln S_T is normal with mean sum(drift) (ca) and variance
 * sum(var) (cb): the conditional (Willard 1997) estimator prices each path with the
 * Black-Scholes formula on those moments.  Each path keeps x, ca and cb; the compiler
 * drops whichever a kernel does not read.
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
    REAL rho_sqdt, cvar_dt;        /* Euler, conditional: rho sqrt(dt), (1 - rho^2) dt */
} consts_t;

/* Path state: log-return x and the conditional moments of ln S given the variance path. */
typedef struct { REAL x, v, ca, cb; } path_t;

/* Andersen (2008) QE step with martingale correction, for one path.  psi = s^2/m^2 and
 * beta are eliminated (2/psi = 2m^2/s^2, p = (s^2 - m^2)/(s^2 + m^2), 1/beta =
 * (s^2 + m^2)/(2m)).  Both regimes (psi <= 1.5 quadratic, else exponential) are computed
 * and one is selected, with no branch: where both regimes divide at the same point the
 * numerator and denominator are selected and divided once (4 divisions a step, not 9).
 * A warp whose paths straddle psi = 1.5 ran both branches anyway; without them QE is
 * about 10% faster in float32 and 14% in float64 on an H200 (benchmarks/heston/README.md).
 * The unused regime's values may be NaN; selects drop them.  The Numba port performs these
 * same operations in this order (backends/cpu_numba.py, _qe_var). */
DEVICE void qe_step(path_t* st, REAL zv, REAL u, REAL zx, const consts_t* k) {
    const REAL vt = st->v;
    const REAL m = k->theta + (vt - k->theta) * k->ex;
    const REAL s2 = vt * k->c1 + k->c2;
    const REAL m2 = m * m;
    const int quad = s2 <= R(1.5) * m2;
    const REAL tot = s2 + m2;
    /* quadratic: 2/psi = 2 m^2 / s^2;  exponential: p = (s^2 - m^2) / (s^2 + m^2) */
    const REAL inv_p = (quad ? R(2.0) * m2 : s2 - m2) / (quad ? s2 : tot);
    const REAL b2 = inv_p - R(1.0) + sqrt(inv_p * (inv_p - R(1.0)));
    /* quadratic: a = m / (1 + b2);  exponential: 1/beta = (s^2 + m^2) / (2 m) */
    const REAL a_ib = (quad ? m : tot) / (quad ? R(1.0) + b2 : R(2.0) * m);
    const REAL zb = sqrt(b2) + zv;
    const REAL v_quad = a_ib * zb * zb;
    const REAL den = R(1.0) - R(2.0) * k->a_m * a_ib;
    const REAL omp = R(1.0) - inv_p;
    const REAL v_exp = (u <= inv_p) ? R(0.0) : log(omp / (R(1.0) - u)) * a_ib;
    /* ln M where M exists: quadratic a_m b2 a / den - ln(den)/2; exponential
     * ln(p + (1 - p) / (1 - a_m / beta)) */
    const REAL t = (quad ? k->a_m * b2 * a_ib : omp) / (quad ? den : R(1.0) - k->a_m * a_ib);
    const int ok = quad ? (den > R(0.0)) : (k->a_m * a_ib < R(1.0));
    const REAL lg = log(ok ? (quad ? den : inv_p + t) : R(1.0));
    const REAL lnm = quad ? t - R(0.5) * lg : lg;
    const int live = m > R(0.0);
    const REAL vn = live ? (quad ? v_quad : v_exp) : R(0.0);
    /* K0* = -ln M - (K1 + K3/2) V_t makes E[S_{t+dt} | S_t, V_t] = S_t e^{mu dt} exactly;
     * where M does not exist (extreme parameters) fall back to Andersen's plain K0. */
    const REAL k0 = (live && ok) ? -lnm - (k->k1 + R(0.5) * k->k3) * vt : k->k0;
    const REAL drift = k->mu_dt + k0 + k->k1 * vt + k->k2 * vn;
    const REAL var = k->k3 * vt + k->k4 * vn;
    st->x += drift + sqrt(var) * zx;
    st->ca += drift;
    st->cb += var;
    st->v = vn;
}

/* Full-truncation Euler (Lord, Koekkoek, van Dijk 2010) on ln S, for one path.  With
 * W = rho Z1 + rho_bar Z2 (the variance's normal), Z1 = rho W + rho_bar Z_perp: given the
 * variance path ln S gains rho sqrt(v dt) W in mean and (1 - rho^2) v dt in variance. */
DEVICE void euler_step(path_t* st, REAL z1, REAL z2, const consts_t* k) {
    const REAL vt = st->v;
    const REAL vp = fmax(vt, R(0.0));
    const REAL sv = sqrt(vp);
    const REAL w = k->rho * z1 + k->rho_bar * z2;
    st->x += k->mu_dt - k->half_dt * vp + k->sqdt * sv * z1;
    st->ca += k->mu_dt - k->half_dt * vp + k->rho_sqdt * sv * w;
    st->cb += k->cvar_dt * vp;
    st->v = vt + (k->kappa_dt * (k->theta - vp) + k->sigma_sqdt * sv * w);
}

/* Simulate both paths of pair `pair`: final states and (if track) the extremes of x. */
DEVICE void simulate_pair(uint64 pair, uint32 n_steps, REAL v0, const consts_t* k,
                          uint32 k0, uint32 k1, int track, path_t* pa, path_t* pb,
                          REAL* mina, REAL* maxa, REAL* minb, REAL* maxb) {
    path_t a, b;
    a.x = R(0.0); a.v = v0; a.ca = R(0.0); a.cb = R(0.0);
    b = a;
    REAL lo_a = R(0.0), hi_a = R(0.0), lo_b = R(0.0), hi_b = R(0.0);
#if SCHEME == 1
    for (uint32 j = 0; j < n_steps; ++j) {
        const ctr4 ra = draw(j, pair, 0u, k0, k1);
        REAL zv, zx;
        box_muller(ra.v0, ra.v1, &zv, &zx);
        const REAL u = u01(ra.v2);
        qe_step(&a, zv, u, zx, k);
#if ANTITHETIC
        qe_step(&b, -zv, R(1.0) - u, -zx, k);
#else
        const ctr4 rb = draw(j, pair, 1u, k0, k1);
        REAL zvb, zxb;
        box_muller(rb.v0, rb.v1, &zvb, &zxb);
        qe_step(&b, zvb, u01(rb.v2), zxb, k);
#endif
        if (track) {
            lo_a = fmin(lo_a, a.x); hi_a = fmax(hi_a, a.x);
            lo_b = fmin(lo_b, b.x); hi_b = fmax(hi_b, b.x);
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
        euler_step(&a, z1, z2, k);
#if ANTITHETIC
        euler_step(&b, -z1, -z2, k);
#else
        box_muller(rb.v0, rb.v1, &w1, &w2);
        euler_step(&b, w1, w2, k);
#endif
        if (track) {
            lo_a = fmin(lo_a, a.x); hi_a = fmax(hi_a, a.x);
            lo_b = fmin(lo_b, b.x); hi_b = fmax(hi_b, b.x);
        }
        if (j + 1 < n_steps) {
            box_muller(ra.v2, ra.v3, &z1, &z2);
            euler_step(&a, z1, z2, k);
#if ANTITHETIC
            euler_step(&b, -z1, -z2, k);
#else
            box_muller(rb.v2, rb.v3, &w1, &w2);
            euler_step(&b, w1, w2, k);
#endif
            if (track) {
                lo_a = fmin(lo_a, a.x); hi_a = fmax(hi_a, a.x);
                lo_b = fmin(lo_b, b.x); hi_b = fmax(hi_b, b.x);
            }
        }
    }
#endif
    *pa = a; *pb = b;
    *mina = lo_a; *maxa = hi_a; *minb = lo_b; *maxb = hi_b;
}

/* Standard normal distribution function. */
DEVICE REAL ncdf(REAL x) {
    return R(0.5) * erfc(-x * R(0.70710678118654752440));
}

/* E[payoff(s0 e^X)] for X ~ N(a, b): Black-Scholes on the path's conditional moments;
 * lnk = ln(s0 / strike). */
DEVICE REAL cond_payoff(REAL a, REAL b, REAL s0, REAL strike, REAL lnk, int is_call) {
    const REAL sd = sqrt(b);
    const REAL fwd = s0 * exp(a + R(0.5) * b);
    if (sd > R(0.0)) {
        const REAL d2 = (lnk + a) / sd;
        const REAL d1 = d2 + sd;
        return is_call ? fwd * ncdf(d1) - strike * ncdf(d2)
                       : strike * ncdf(-d2) - fwd * ncdf(-d1);
    }
    return is_call ? fmax(fwd - strike, R(0.0)) : fmax(strike - fwd, R(0.0));
}

#define CONSTS_ARGS REAL mu_dt, REAL kappa_dt, REAL theta, REAL sigma_sqdt, REAL sqdt, REAL half_dt, \
    REAL rho, REAL rho_bar, REAL ex, REAL c1, REAL c2, REAL qk0, REAL qk1, REAL qk2, \
    REAL qk3, REAL qk4, REAL a_m, REAL rho_sqdt, REAL cvar_dt

#define FILL_CONSTS(k) \
    k.mu_dt = mu_dt; k.kappa_dt = kappa_dt; k.theta = theta; k.sigma_sqdt = sigma_sqdt; \
    k.sqdt = sqdt; k.half_dt = half_dt; k.rho = rho; k.rho_bar = rho_bar; k.ex = ex; k.c1 = c1; k.c2 = c2; \
    k.k0 = qk0; k.k1 = qk1; k.k2 = qk2; k.k3 = qk3; k.k4 = qk4; k.a_m = a_m; \
    k.rho_sqdt = rho_sqdt; k.cvar_dt = cvar_dt

/* European price: per-work-group sums of y (discounted payoff, pair mean), c (control:
 * S_T/F - 1, pair mean, known mean 0) and their squares/cross product, in ACC.  With
 * CONDITIONAL, y and c are their expectations given the variance path. */
KERNEL void heston_price(const uint64 n_pairs, const uint32 n_steps, const REAL v0,
                         CONSTS_ARGS, const REAL s0, const REAL strike, const REAL disc,
                         const REAL mu_t, const int is_call, const uint32 key0,
                         const uint32 key1, GLOBAL ACC* partials) {
    consts_t k;
    FILL_CONSTS(k);
    const REAL lnk = log(s0 / strike);
    ACC sy = 0, syy = 0, sc = 0, scc = 0, syc = 0;
    for (uint64 i = GID; i < n_pairs; i += GSIZE) {
        path_t a, b;
        REAL d0, d1, d2, d3;
        simulate_pair(i, n_steps, v0, &k, key0, key1, 0, &a, &b, &d0, &d1, &d2, &d3);
#if CONDITIONAL
        const REAL pa = cond_payoff(a.ca, a.cb, s0, strike, lnk, is_call);
        const REAL pb = cond_payoff(b.ca, b.cb, s0, strike, lnk, is_call);
        const REAL ea = expm1(a.ca + R(0.5) * a.cb - mu_t);
        const REAL eb = expm1(b.ca + R(0.5) * b.cb - mu_t);
#else
        const REAL sa = s0 * exp(a.x), sb = s0 * exp(b.x);
        const REAL pa = is_call ? fmax(sa - strike, R(0.0)) : fmax(strike - sa, R(0.0));
        const REAL pb = is_call ? fmax(sb - strike, R(0.0)) : fmax(strike - sb, R(0.0));
        const REAL ea = expm1(a.x - mu_t);
        const REAL eb = expm1(b.x - mu_t);
#endif
        const ACC y = (ACC)(R(0.5) * disc * (pa + pb));
        const ACC c = (ACC)(R(0.5) * (ea + eb));
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
        path_t a, b;
        REAL la, ha, lb, hb;
        simulate_pair(i, n_steps, v0, &k, key0, key1, 1, &a, &b, &la, &ha, &lb, &hb);
        s_end[i] = s0 * exp(a.x); s_end[n_pairs + i] = s0 * exp(b.x);
        s_min[i] = s0 * exp(la); s_min[n_pairs + i] = s0 * exp(lb);
        s_max[i] = s0 * exp(ha); s_max[n_pairs + i] = s0 * exp(hb);
    }
}
