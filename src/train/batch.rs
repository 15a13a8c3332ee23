//! Random-window batches, as nanoGPT: `batch` windows of `block + 1` tokens at
//! uniformly random offsets; inputs are the first `block`, targets the last.
//! The RNG state is part of the trainer state, so a resumed run draws the
//! same batches as an uninterrupted one.

use crate::data::Tokens;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct Batcher {
    rng: ChaCha8Rng,
}

/// The serializable position of a [`Batcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatcherState {
    pub seed: u64,
    /// ChaCha word position, as a decimal string in JSON (it is a u128).
    #[serde(with = "u128_string")]
    pub word_pos: u128,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Batcher {
    pub fn new(seed: u64) -> Self {
        Batcher {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn from_state(st: BatcherState) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(st.seed);
        rng.set_word_pos(st.word_pos);
        Batcher { rng }
    }

    pub fn state(&self, seed: u64) -> BatcherState {
        BatcherState {
            seed,
            word_pos: self.rng.get_word_pos(),
        }
    }

    /// Draws a batch from `data` (needs at least `block + 1` tokens):
    /// `(inputs, targets)`, each `batch * block` ids, row-major.
    /// The windows are read from memory or from the mapped token cache.
    pub fn draw(&mut self, data: &Tokens, batch: usize, block: usize) -> (Vec<usize>, Vec<usize>) {
        let mut x = Vec::with_capacity(batch * block);
        let mut y = Vec::with_capacity(batch * block);
        let hi = data.len().saturating_sub(block).max(1);
        for _ in 0..batch {
            let i = self.rng.gen_range(0..hi);
            data.extend_window(i, block, &mut x);
            data.extend_window(i + 1, block, &mut y);
        }
        (x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn state_round_trip_draws_the_same() {
        let data = Tokens::owned((0..1000).collect());
        let mut a = Batcher::new(7);
        a.draw(&data, 4, 8);
        let st = a.state(7);
        let json = serde_json::to_string(&st).unwrap();
        let mut b = Batcher::from_state(serde_json::from_str(&json).unwrap());
        assert_eq!(a.draw(&data, 4, 8), b.draw(&data, 4, 8));
    }
    #[test]
    fn targets_are_shifted_inputs() {
        let data = Tokens::owned((0..100).collect());
        let (x, y) = Batcher::new(1).draw(&data, 3, 5);
        for (a, b) in x.iter().zip(&y) {
            assert_eq!(a + 1, *b);
        }
    }
}
