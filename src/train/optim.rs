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
        let t = self.t.max(1) as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let step = c.lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        let wd = if decay {
            1.0 - c.lr * c.weight_decay
        } else {
            1.0
        };
        let m = &mut self.m[i];
        let v = &mut self.v[i];
        for j in 0..param.len() {
            let gj = g[j];
            m[j] = c.beta1 * m[j] + (1.0 - c.beta1) * gj;
            v[j] = c.beta2 * v[j] + (1.0 - c.beta2) * gj * gj;
            let denom = v[j].sqrt() / bc2_sqrt + c.eps;
            param[j] = param[j] * wd - step * m[j] / denom;
        }
    }
}

/// Global L2 norm of all gradients.
pub fn global_norm(grads: &[Vec<f32>]) -> f32 {
    grads
        .iter()
        .map(|g| g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
        .sum::<f64>()
        .sqrt() as f32
}

/// Scales the gradients so their global norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_`); returns the norm before clipping.
pub fn clip_global_norm(grads: &mut [Vec<f32>], max_norm: f32) -> f32 {
    let norm = global_norm(grads);
    if max_norm > 0.0 && norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            for g in grads.iter_mut() {
                for x in g.iter_mut() {
                    *x *= coef;
                }
            }
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
