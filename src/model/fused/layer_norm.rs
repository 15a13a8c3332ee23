//! LayerNorm over the last axis with gain and bias; rows in parallel.

use super::{free_grad, ghost_io, host, with_host, ROW_CHUNK};
use crate::model::simd::{dot3_8, dot8, simd_fn, sq_dev8, sum8};
use crate::model::{T1, T3};
use dfdx::prelude::*;
use rayon::prelude::*;

simd_fn! {
    /// Rows of `xc` (width `g.len()`): `y = xhat * g + b`, keeping `xhat` and `1/std`.
    fn forward_rows(
        xc: &[f32],
        yc: &mut [f32],
        hc: &mut [f32],
        rc: &mut [f32],
        gv: &[f32],
        bv: &[f32],
        eps: f32,
    ) {
        let c = gv.len();
        for (r, xr) in xc.chunks_exact(c).enumerate() {
            let mean = sum8(xr) / c as f32;
            let var = sq_dev8(xr, mean) / c as f32;
            let rs = 1.0 / (var + eps).sqrt();
            rc[r] = rs;
            let hr = &mut hc[r * c..(r + 1) * c];
            let yr = &mut yc[r * c..(r + 1) * c];
            for j in 0..c {
                let h = (xr[j] - mean) * rs;
                hr[j] = h;
                yr[j] = h * gv[j] + bv[j];
            }
        }
    }
}

simd_fn! {
    /// Backward over rows: accumulates `dx`, and the gain/bias partials `dg`, `db`.
    fn backward_rows(
        dxc: &mut [f32],
        dyc: &[f32],
        hc: &[f32],
        rc: &[f32],
        gv: &[f32],
        dg: &mut [f32],
        db: &mut [f32],
    ) {
        let c = gv.len();
        for (r, &rs) in rc.iter().enumerate() {
            let dyr = &dyc[r * c..(r + 1) * c];
            let hr = &hc[r * c..(r + 1) * c];
            for j in 0..c {
                dg[j] += dyr[j] * hr[j];
                db[j] += dyr[j];
            }
            let m1 = dot8(dyr, gv) / c as f32;
            let m2 = dot3_8(dyr, gv, hr) / c as f32;
            let dxr = &mut dxc[r * c..(r + 1) * c];
            for j in 0..c {
                dxr[j] += rs * (dyr[j] * gv[j] - m1 - hr[j] * m2);
            }
        }
    }
}

/// LayerNorm of the `g.len()`-wide rows of `xv` on the host, rows in
/// parallel: `(y, xhat, rstd)`, the output, the normalised input and 1/std
/// per row (the last two are what the backward needs).
pub(crate) fn forward_host(
    xv: &[f32],
    gv: &[f32],
    bv: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let c = gv.len();
    let rows = xv.len() / c.max(1);
    let mut xhat = vec![0.0f32; xv.len()];
    let mut rstd = vec![0.0f32; rows];
    let mut y = vec![0.0f32; xv.len()];
    y.par_chunks_mut(c * ROW_CHUNK)
        .zip(xhat.par_chunks_mut(c * ROW_CHUNK))
        .zip(
            rstd.par_chunks_mut(ROW_CHUNK)
                .zip(xv.par_chunks(c * ROW_CHUNK)),
        )
        .for_each(|((yc, hc), (rc, xc))| forward_rows(xc, yc, hc, rc, gv, bv, eps));
    (y, xhat, rstd)
}

/// The gain and bias gradients' partial sums, one pair per fixed chunk of
/// rows, from [`backward_host`].
pub(crate) struct Partials(Vec<(Vec<f32>, Vec<f32>)>);

impl Partials {
    /// Adds the gain's partials, in chunk order, into its gradient `dg`.
    pub(crate) fn add_gain(&self, dg: &mut [f32]) {
        for (pg, _) in &self.0 {
            for (d, p) in dg.iter_mut().zip(pg) {
                *d += p;
            }
        }
    }

    /// Adds the bias's partials, in chunk order, into its gradient `db`.
    pub(crate) fn add_bias(&self, db: &mut [f32]) {
        for (_, pb) in &self.0 {
            for (d, p) in db.iter_mut().zip(pb) {
                *d += p;
            }
        }
    }

    /// Both, into the store's gradients of the gain `g` and bias `b`.
    pub(crate) fn add_to(
        &self,
        grads: &mut Gradients<f32, Cpu>,
        g: &T1<Cpu>,
        b: &T1<Cpu>,
    ) -> Result<(), CpuError> {
        self.add_gain(grads.get_or_alloc_mut(g)?);
        self.add_bias(grads.get_or_alloc_mut(b)?);
        Ok(())
    }
}

/// LayerNorm's backward on the host, rows in parallel: accumulates the
/// input's gradient into `dx` from the output's `dy` and [`forward_host`]'s
/// `xhat` and `rstd`; returns the gain/bias partials.
pub(crate) fn backward_host(
    dx: &mut [f32],
    dy: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    gv: &[f32],
) -> Partials {
    let c = gv.len();
    Partials(
        dx.par_chunks_mut(c * ROW_CHUNK)
            .zip(dy.par_chunks(c * ROW_CHUNK))
            .zip(
                xhat.par_chunks(c * ROW_CHUNK)
                    .zip(rstd.par_chunks(ROW_CHUNK)),
            )
            .map(|((dxc, dyc), (hc, rc))| {
                let mut dg = vec![0.0f32; c];
                let mut db = vec![0.0f32; c];
                backward_rows(dxc, dyc, hc, rc, gv, &mut dg, &mut db);
                (dg, db)
            })
            .collect(),
    )
}

pub fn layer_norm<T: Tape<f32, Cpu>>(
    x: T3<Cpu, T>,
    g: &T1<Cpu>,
    b: &T1<Cpu>,
    eps: f64,
) -> T3<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let shape = *x.shape();
    let c = shape.2;
    assert_eq!(g.shape().0, c, "layer_norm gain size");
    assert_eq!(b.shape().0, c, "layer_norm bias size");
    let gv = host(g);
    let bv = host(b);
    let (y, xhat, rstd) = with_host(&x, |xv| forward_host(xv, &gv, &bv, eps as f32));
    let out = x.device().tensor_from_vec(y, shape);
    if T::OWNS_TAPE {
        // Ghosts of the input and output: the backward needs `xhat` and
        // `rstd` only, so neither buffer is kept.
        let (xg, og, g, b) = (x.ghost(), out.ghost(), g.clone(), b.clone());
        drop(x);
        tape.add_backward_op(move |grads| {
            let (dx, dy) = ghost_io!(grads, &xg, &og)?;
            let partial = backward_host(dx, dy, &xhat, &rstd, &gv);
            free_grad!(grads, &og);
            partial.add_to(grads, &g, &b)
        });
    }
    out.put_tape(tape)
}
