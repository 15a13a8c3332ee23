//! AdamW as nanoGPT configures it: decoupled weight decay on 2-D weights only
//! (not biases, not LayerNorm gains), and clipping by global gradient norm.
//! The state lives in host vectors so it can be saved and resumed exactly.

/// Hyper-parameters of one step.
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

/// First and second moments of every parameter, in the model's visit order.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    /// Steps taken (for bias correction).
    pub t: u64,
}

impl AdamW {
    pub fn new(sizes: &[usize]) -> Self {
        AdamW {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            t: 0,
        }
    }

    /// Updates parameter `i` in place from its gradient `g` (already clipped).
    /// `decay`: whether weight decay applies (2-D weights).
    pub fn update(&mut self, i: usize, param: &mut [f32], g: &[f32], decay: bool, c: &AdamWConfig) {
        let k = StepConsts::new(self.t, decay, c);
        adamw_slice(param, g, &mut self.m[i], &mut self.v[i], &k);
    }

    /// Updates parameter `i` in place as step `t` (bias correction by `t`,
    /// whatever `self.t` is), in parallel over fixed-size chunks; every
    /// element is computed exactly as [`AdamW::update`] does, so the result
    /// does not depend on the thread count.
    pub fn update_param(
        &mut self,
        t: u64,
        i: usize,
        param: &mut [f32],
        g: &[f32],
        decay: bool,
        c: &AdamWConfig,
    ) {
        use rayon::prelude::*;
        let k = StepConsts::new(t, decay, c);
        param
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(
                self.m[i]
                    .par_chunks_mut(CHUNK)
                    .zip(self.v[i].par_chunks_mut(CHUNK)),
            )
            .for_each(|((p, g), (m, v))| adamw_slice(p, g, m, v, &k));
    }

    /// Whether [`AdamW::update_param`] with the same arguments would leave
    /// every weight finite; writes nothing (no copy of the state is needed
    /// to refuse a step).
    pub fn update_stays_finite(
        &self,
        t: u64,
        i: usize,
        param: &[f32],
        g: &[f32],
        decay: bool,
        c: &AdamWConfig,
    ) -> bool {
        use rayon::prelude::*;
        let k = StepConsts::new(t, decay, c);
        param
            .par_chunks(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(self.m[i].par_chunks(CHUNK).zip(self.v[i].par_chunks(CHUNK)))
            .all(|((p, g), (m, v))| adamw_finite(p, g, m, v, &k))
    }
}

const CHUNK: usize = 16384;

/// The constants of one step for one parameter.
struct StepConsts {
    beta1: f32,
    beta2: f32,
    eps: f32,
    step: f32,
    bc2_sqrt: f32,
    wd: f32,
}

impl StepConsts {
    fn new(t: u64, decay: bool, c: &AdamWConfig) -> Self {
        let t = t.max(1) as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        StepConsts {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            step: c.lr / bc1,
            bc2_sqrt: bc2.sqrt(),
            wd: if decay {
                1.0 - c.lr * c.weight_decay
            } else {
                1.0
            },
        }
    }
}

crate::model::simd::simd_fn! {
    fn adamw_slice(param: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &StepConsts) {
        for (((p, &gj), mj), vj) in param.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *mj = k.beta1 * *mj + (1.0 - k.beta1) * gj;
            *vj = k.beta2 * *vj + (1.0 - k.beta2) * gj * gj;
            let denom = vj.sqrt() / k.bc2_sqrt + k.eps;
            *p = *p * k.wd - k.step * *mj / denom;
        }
    }
}

crate::model::simd::simd_fn! {
    /// Whether [`adamw_slice`] would leave every weight finite (the same
    /// expressions, so the same roundings; nothing written).
    fn adamw_finite(param: &[f32], g: &[f32], m: &[f32], v: &[f32], k: &StepConsts) -> bool {
        let mut finite = true;
        for (((&p, &gj), &mj), &vj) in param.iter().zip(g).zip(m).zip(v) {
            let mj = k.beta1 * mj + (1.0 - k.beta1) * gj;
            let vj = k.beta2 * vj + (1.0 - k.beta2) * gj * gj;
            let denom = vj.sqrt() / k.bc2_sqrt + k.eps;
            finite &= (p * k.wd - k.step * mj / denom).is_finite();
        }
        finite
    }
}

crate::model::simd::simd_fn! {
    /// Σ x² in f64, with eight accumulators (a fixed order, so the result
    /// does not depend on the machine or the thread count).
    fn sum_squares(g: &[f32]) -> f64 {
        crate::model::simd::reduce8!(g.len(), 0.0f64, |a: f64, b: f64| a + b, |j| {
            (g[j] as f64) * (g[j] as f64)
        })
    }
}

crate::model::simd::simd_fn! {
    fn scale_slice(c: &mut [f32], coef: f32) {
        for x in c.iter_mut() {
            *x *= coef;
        }
    }
}

/// Global L2 norm of all gradients (per-tensor sums in parallel, added in order).
pub fn global_norm(grads: &[Vec<f32>]) -> f32 {
    use rayon::prelude::*;
    let sums: Vec<f64> = grads.par_iter().map(|g| sum_squares(g)).collect();
    sums.iter().sum::<f64>().sqrt() as f32
}

/// Scales the gradients so their global norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_`); returns the norm before clipping.
pub fn clip_global_norm(grads: &mut [Vec<f32>], max_norm: f32) -> f32 {
    let norm = global_norm(grads);
    if max_norm > 0.0 && norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            use rayon::prelude::*;
            grads
                .par_iter_mut()
                .for_each(|g| g.par_chunks_mut(CHUNK).for_each(|c| scale_slice(c, coef)));
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_scales_to_max_norm() {
        let mut g = vec![vec![3.0, 0.0], vec![4.0]];
        let n = clip_global_norm(&mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        assert!((global_norm(&g) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn first_adam_step_moves_by_lr() {
        // With bias correction the first step is lr * sign(g) (eps aside).
        let mut opt = AdamW::new(&[2]);
        opt.t = 1;
        let mut p = vec![1.0, 1.0];
        let c = AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        opt.update(0, &mut p, &[2.0, -3.0], false, &c);
        assert!(
            (p[0] - 0.9).abs() < 1e-5 && (p[1] - 1.1).abs() < 1e-5,
            "{p:?}"
        );
    }

    #[test]
    fn update_param_matches_update_and_the_check_agrees() {
        let c = AdamWConfig {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let n = [40000, 3];
        let mut a = AdamW::new(&n);
        let mut b = a.clone();
        let mut pa: Vec<Vec<f32>> = n
            .iter()
            .map(|&k| (0..k).map(|i| (i as f32 * 0.37).sin()).collect())
            .collect();
        let mut pb = pa.clone();
        let g: Vec<Vec<f32>> = n
            .iter()
            .map(|&k| (0..k).map(|i| (i as f32 * 0.11).cos()).collect())
            .collect();
        // `t` from a black box: with a constant step LLVM may fold the bias
        // corrections' `powi` at compile time for one path and not the other
        // (release builds), which rounds differently.
        for t in (1..4).map(std::hint::black_box) {
            b.t = t;
            for i in 0..2 {
                assert!(a.update_stays_finite(t, i, &pa[i], &g[i], i == 0, &c));
                a.update_param(t, i, &mut pa[i], &g[i], i == 0, &c);
                b.update(i, &mut pb[i], &g[i], i == 0, &c);
            }
        }
        a.t = b.t;
        assert_eq!(pa, pb);
        assert_eq!(a, b);
        // A weight that would overflow is caught before anything is written.
        let huge = AdamWConfig { lr: 3e38, ..c };
        let before = a.clone();
        let mut p = vec![-3e38f32, 0.5, 0.25];
        assert!(!a.update_stays_finite(4, 1, &p, &g[1], false, &huge));
        assert_eq!(a, before);
        assert!(a.update_stays_finite(4, 1, &p, &g[1], false, &c));
        a.update_param(4, 1, &mut p, &g[1], false, &c);
        assert!(p.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn decay_only_when_asked() {
        let c = AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.5,
        };
        let mut opt = AdamW::new(&[1, 1]);
        opt.t = 1;
        let (mut a, mut b) = (vec![1.0], vec![1.0]);
        opt.update(0, &mut a, &[0.0], true, &c);
        opt.update(1, &mut b, &[0.0], false, &c);
        assert!((a[0] - 0.95).abs() < 1e-6);
        assert_eq!(b[0], 1.0);
    }
}
