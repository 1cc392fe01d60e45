//! A small Gaussian process for the Bayesian sampler: Matérn-5/2 kernel with
//! one length-scale per parameter (a parameter's one-hot dimensions share
//! it), hyperparameters by maximum a-posteriori marginal likelihood
//! (Nelder–Mead from several starts), Cholesky written out because n ≤ 1000.

use super::rng::{SweepRng, standard_normal};

/// Log-space hyperparameters: length-scales (one per group), signal and noise variance.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    pub log_lengths: Vec<f64>,
    pub log_signal: f64,
    pub log_noise: f64,
}

/// Bounds keep the fit sane when data are few: length-scales in the
/// normalized space between 0.01 and 20, noise between 1e-6 and 1.
const LOG_LENGTH: (f64, f64) = (-4.6, 3.0);
const LOG_SIGNAL: (f64, f64) = (-3.0, 3.0);
const LOG_NOISE: (f64, f64) = (-13.8, 0.0);

impl Hyper {
    pub fn default_for(groups: usize) -> Self {
        Self {
            log_lengths: vec![(0.3f64).ln(); groups],
            log_signal: 0.0,
            log_noise: (1e-3f64).ln(),
        }
    }

    fn to_vec(&self) -> Vec<f64> {
        let mut v = self.log_lengths.clone();
        v.push(self.log_signal);
        v.push(self.log_noise);
        v
    }

    fn from_vec(v: &[f64]) -> Self {
        let g = v.len() - 2;
        Self {
            log_lengths: v[..g]
                .iter()
                .map(|x| x.clamp(LOG_LENGTH.0, LOG_LENGTH.1))
                .collect(),
            log_signal: v[g].clamp(LOG_SIGNAL.0, LOG_SIGNAL.1),
            log_noise: v[g + 1].clamp(LOG_NOISE.0, LOG_NOISE.1),
        }
    }

    /// Weak log-normal priors: length-scale around 0.5 of the range, unit
    /// signal (targets are standardized), small noise.
    fn log_prior(&self) -> f64 {
        let gauss = |x: f64, mu: f64, sd: f64| -0.5 * ((x - mu) / sd).powi(2);
        self.log_lengths
            .iter()
            .map(|&l| gauss(l, (0.5f64).ln(), 1.0))
            .sum::<f64>()
            + gauss(self.log_signal, 0.0, 1.0)
            + gauss(self.log_noise, (1e-3f64).ln(), 3.0)
    }
}

/// Matérn-5/2 correlation at scaled distance `r`.
fn matern52(r: f64) -> f64 {
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

/// Which feature dimensions belong to which length-scale group.
#[derive(Debug, Clone)]
pub struct Layout {
    pub group_of_dim: Vec<usize>,
    pub groups: usize,
}

fn kernel(layout: &Layout, h: &Hyper, inv_l2: &[f64], a: &[f64], b: &[f64]) -> f64 {
    let r2: f64 = a
        .iter()
        .zip(b)
        .zip(&layout.group_of_dim)
        .map(|((x, y), &g)| (x - y).powi(2) * inv_l2[g])
        .sum();
    h.log_signal.exp() * matern52(r2.sqrt())
}

/// A fitted GP: training inputs, Cholesky factor and weights.
#[derive(Debug, Clone)]
pub struct Gp {
    layout: Layout,
    pub hyper: Hyper,
    inv_l2: Vec<f64>,
    x: Vec<Vec<f64>>,
    chol: Vec<f64>,
    alpha: Vec<f64>,
}

impl Gp {
    /// Condition on `(x, y)` with fixed hyperparameters; `None` if the kernel
    /// matrix is numerically singular even with jitter.
    pub fn condition(layout: &Layout, hyper: Hyper, x: &[Vec<f64>], y: &[f64]) -> Option<Self> {
        let inv_l2: Vec<f64> = hyper.log_lengths.iter().map(|l| (-2.0 * l).exp()).collect();
        let n = x.len();
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = kernel(layout, &hyper, &inv_l2, &x[i], &x[j]);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
        }
        let noise = hyper.log_noise.exp();
        let chol = cholesky_with_jitter(&k, n, noise)?;
        let alpha = solve_upper_t(&chol, n, &solve_lower(&chol, n, y));
        Some(Self {
            layout: layout.clone(),
            hyper,
            inv_l2,
            x: x.to_vec(),
            chol,
            alpha,
        })
    }

    /// Posterior mean and standard deviation at `p`.
    pub fn predict(&self, p: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let ks: Vec<f64> = self
            .x
            .iter()
            .map(|xi| kernel(&self.layout, &self.hyper, &self.inv_l2, xi, p))
            .collect();
        let mean = ks.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = solve_lower(&self.chol, n, &ks);
        let var = self.hyper.log_signal.exp() - v.iter().map(|x| x * x).sum::<f64>();
        (mean, var.max(1e-12).sqrt())
    }

    /// Negative log marginal likelihood minus log prior (what the fit minimizes).
    fn objective(layout: &Layout, hyper: &Hyper, x: &[Vec<f64>], y: &[f64]) -> f64 {
        let Some(gp) = Gp::condition(layout, hyper.clone(), x, y) else {
            return f64::INFINITY;
        };
        let n = x.len();
        let fit: f64 = 0.5 * y.iter().zip(&gp.alpha).map(|(a, b)| a * b).sum::<f64>();
        let logdet: f64 = (0..n).map(|i| gp.chol[i * n + i].ln()).sum();
        fit + logdet - hyper.log_prior()
    }

    /// Fit hyperparameters by MAP (Nelder–Mead from `warm`, the default and a
    /// few random starts), then condition on the data.
    pub fn fit(
        layout: &Layout,
        x: &[Vec<f64>],
        y: &[f64],
        warm: Option<&Hyper>,
        rng: &mut SweepRng,
    ) -> Option<Self> {
        let mut starts = vec![Hyper::default_for(layout.groups).to_vec()];
        if let Some(w) = warm {
            starts.push(w.to_vec());
        }
        for _ in 0..2 {
            let mut s = Hyper::default_for(layout.groups).to_vec();
            for v in s.iter_mut() {
                *v += 0.7 * standard_normal(rng);
            }
            starts.push(s);
        }
        let f = |v: &[f64]| Gp::objective(layout, &Hyper::from_vec(v), x, y);
        let best = starts
            .into_iter()
            .map(|s| nelder_mead(&f, s, 40 * (layout.groups + 2)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        Gp::condition(layout, Hyper::from_vec(&best.0), x, y)
    }
}

/// Lower Cholesky factor of `k + noise·I`, adding jitter on failure.
fn cholesky_with_jitter(k: &[f64], n: usize, noise: f64) -> Option<Vec<f64>> {
    let mut jitter = 0.0;
    for _ in 0..6 {
        let mut a = k.to_vec();
        for i in 0..n {
            a[i * n + i] += noise + jitter;
        }
        if let Some(l) = cholesky(a, n) {
            return Some(l);
        }
        jitter = if jitter == 0.0 { 1e-8 } else { jitter * 100.0 };
    }
    None
}

/// In-place Cholesky–Banachiewicz; `None` if not positive definite.
fn cholesky(mut a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    return None;
                }
                a[i * n + i] = s.sqrt();
            } else {
                a[i * n + j] = s / a[j * n + j];
            }
        }
        for j in i + 1..n {
            a[i * n + j] = 0.0;
        }
    }
    Some(a)
}

/// Solve L z = b.
fn solve_lower(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * z[k]).sum();
        z[i] = (b[i] - s) / l[i * n + i];
    }
    z
}

/// Solve Lᵀ z = b.
fn solve_upper_t(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * z[k]).sum();
        z[i] = (b[i] - s) / l[i * n + i];
    }
    z
}

/// Minimize `f` with Nelder–Mead from `start` (initial step 0.5 per axis).
fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, start: Vec<f64>, max_evals: usize) -> (Vec<f64>, f64) {
    let d = start.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(d + 1);
    let f0 = f(&start);
    simplex.push((start.clone(), f0));
    for i in 0..d {
        let mut p = start.clone();
        p[i] += 0.5;
        let fp = f(&p);
        simplex.push((p, fp));
    }
    let mut evals = d + 1;
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (simplex[d].1 - simplex[0].1).abs() < 1e-6 {
            break;
        }
        let centroid: Vec<f64> = (0..d)
            .map(|j| simplex[..d].iter().map(|(p, _)| p[j]).sum::<f64>() / d as f64)
            .collect();
        let towards = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[d].0)
                .map(|(c, w)| c + t * (w - c))
                .collect()
        };
        let reflected = towards(-1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < simplex[0].1 {
            let expanded = towards(-2.0);
            let fe = f(&expanded);
            evals += 1;
            simplex[d] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[d - 1].1 {
            simplex[d] = (reflected, fr);
        } else {
            let contracted = towards(0.5);
            let fc = f(&contracted);
            evals += 1;
            if fc < simplex[d].1 {
                simplex[d] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for (p, fp) in simplex.iter_mut().skip(1) {
                    for (x, b) in p.iter_mut().zip(&best) {
                        *x = b + 0.5 * (*x - b);
                    }
                    *fp = f(p);
                    evals += 1;
                }
            }
        }
    }
    simplex
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((start, f0))
}

/// Expected improvement over `best` (maximizing) with exploration margin `xi`.
pub fn expected_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let gain = mean - best - xi;
    if sd <= 1e-12 {
        return gain.max(0.0);
    }
    let z = gain / sd;
    gain * normal_cdf(z) + sd * normal_pdf(z)
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::rng::seeded;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4,2],[2,3]] → L = [[2,0],[1,√2]]
        let l = cholesky(vec![4.0, 2.0, 2.0, 3.0], 2).expect("positive definite");
        assert!((l[0] - 2.0).abs() < 1e-12 && (l[2] - 1.0).abs() < 1e-12);
        assert!((l[3] - 2f64.sqrt()).abs() < 1e-12);
        let x = solve_upper_t(&l, 2, &solve_lower(&l, 2, &[2.0, 5.0]));
        // 4x + 2y = 2, 2x + 3y = 5 → x = -0.5, y = 2
        assert!((x[0] + 0.5).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn cholesky_rejects_indefinite_matrix() {
        assert!(cholesky(vec![1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959963984540054) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.15865525393145707).abs() < 1e-6);
    }

    #[test]
    fn fitted_gp_interpolates_smooth_function() {
        let layout = Layout {
            group_of_dim: vec![0],
            groups: 1,
        };
        let x: Vec<Vec<f64>> = (0..12).map(|i| vec![i as f64 / 11.0]).collect();
        let y: Vec<f64> = x.iter().map(|p| (6.0 * p[0]).sin()).collect();
        let gp = Gp::fit(&layout, &x, &y, None, &mut seeded(1)).expect("fit");
        let (m, sd) = gp.predict(&[0.5]);
        assert!((m - 3f64.sin()).abs() < 0.02, "mean {m}");
        assert!(sd < 0.05, "sd {sd}");
        let (_, far_sd) = gp.predict(&[3.0]);
        assert!(far_sd > 0.5, "uncertain far from data: {far_sd}");
    }

    #[test]
    fn nelder_mead_finds_quadratic_minimum() {
        let f = |v: &[f64]| (v[0] - 1.0).powi(2) + 2.0 * (v[1] + 0.5).powi(2);
        let (p, fx) = nelder_mead(&f, vec![0.0, 0.0], 400);
        assert!(fx < 1e-6 && (p[0] - 1.0).abs() < 1e-3 && (p[1] + 0.5).abs() < 1e-3);
    }
}
