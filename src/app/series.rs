//! Bounded metric history: when a series passes its capacity the older half
//! is averaged pairwise, so memory stays bounded however long training runs
//! while recent points keep full resolution.

/// (step, value) points in step order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    points: Vec<(f64, f64)>,
    cap: usize,
}

pub const DEFAULT_CAP: usize = 4096;

impl Default for Series {
    fn default() -> Self {
        Series::with_capacity(DEFAULT_CAP)
    }
}

impl Series {
    pub fn with_capacity(cap: usize) -> Series {
        Series {
            points: Vec::new(),
            cap: cap.max(4),
        }
    }

    /// Adds a point; non-finite values are skipped (a NaN loss would wreck the axes).
    pub fn push(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        self.points.push((x, y));
        if self.points.len() > self.cap {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let half = self.points.len() / 2;
        let mut out: Vec<(f64, f64)> = Vec::with_capacity(self.cap);
        let old = &self.points[..half];
        for pair in old.chunks(2) {
            let n = pair.len() as f64;
            let x = pair.iter().map(|p| p.0).sum::<f64>() / n;
            let y = pair.iter().map(|p| p.1).sum::<f64>() / n;
            out.push((x, y));
        }
        out.extend_from_slice(&self.points[half..]);
        self.points = out;
    }

    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }
    pub fn len(&self) -> usize {
        self.points.len()
    }
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
    pub fn last(&self) -> Option<(f64, f64)> {
        self.points.last().copied()
    }
    pub fn clear(&mut self) {
        self.points.clear();
    }
}

/// Exponential moving average with bias correction; `strength` in [0, 1).
pub fn ema(points: &[(f64, f64)], strength: f64) -> Vec<(f64, f64)> {
    let a = strength.clamp(0.0, 0.999);
    let mut acc = 0.0;
    let mut weight = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            acc = a * acc + (1.0 - a) * y;
            weight = a * weight + (1.0 - a);
            (x, if weight > 0.0 { acc / weight } else { y })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_ordered() {
        let mut s = Series::with_capacity(64);
        for i in 0..100_000 {
            s.push(i as f64, (i % 7) as f64);
        }
        assert!(s.len() <= 64);
        assert!(s.points().windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(s.last(), Some((99_999.0, (99_999 % 7) as f64)));
    }

    #[test]
    fn ema_of_constant_is_constant() {
        let p: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0)).collect();
        assert!(ema(&p, 0.9).iter().all(|&(_, y)| (y - 2.0).abs() < 1e-9));
    }
}
