//! Tasks the project generates itself, deterministically from the seed. Each
//! record is one line ending in "\n", small enough that a 2-layer, 64-wide
//! model with a character tokenizer learns it in about a minute on a CPU.

use super::{Dataset, Record};
use crate::config::SyntheticTask;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Generates `n` records of `task` from `seed` (same inputs, same records).
pub fn generate(task: SyntheticTask, n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ task_salt(task));
    let records = (0..n)
        .map(|i| Record {
            title: format!("#{}", i + 1),
            text: example(task, &mut rng),
        })
        .collect();
    let name = match task {
        SyntheticTask::Copy => "copy",
        SyntheticTask::Induction => "induction",
        SyntheticTask::Reverse => "reverse",
        SyntheticTask::Addition => "addition",
    };
    Dataset::from_records(
        format!("synthetic {name} ({n} records, seed {seed})"),
        records,
    )
}

fn task_salt(task: SyntheticTask) -> u64 {
    match task {
        SyntheticTask::Copy => 0xc0b7_0c0b,
        SyntheticTask::Induction => 0x1d0c_7a5e,
        SyntheticTask::Reverse => 0x5e7e_45e0,
        SyntheticTask::Addition => 0xadd0_0add,
    }
}

/// Letters drawn for the synthetic strings: a small alphabet keeps the
/// embedding cheap to learn, so the attention mechanism forms early.
const ALPHABET: u8 = 12;

/// Length of both halves of a `copy` line: fixed, so every copied letter sits
/// exactly `COPY_LEN + 1` positions back, which a 2-layer model finds within
/// a few hundred steps (a bright off-diagonal stripe in the heatmap).
pub const COPY_LEN: usize = 8;

fn letters(rng: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    let len = rng.gen_range(min..=max);
    (0..len)
        .map(|_| char::from(b'a' + rng.gen_range(0..ALPHABET)))
        .collect()
}

/// One example line, "\n"-terminated.
pub(super) fn example(task: SyntheticTask, rng: &mut ChaCha8Rng) -> String {
    match task {
        SyntheticTask::Copy => {
            let s = letters(rng, COPY_LEN, COPY_LEN);
            format!("{s}|{s}\n")
        }
        SyntheticTask::Induction => {
            let s = letters(rng, 4, 12);
            format!("{s}|{s}\n")
        }
        SyntheticTask::Reverse => {
            let s = letters(rng, 3, 8);
            let r: String = s.chars().rev().collect();
            format!("{s}>{r}\n")
        }
        SyntheticTask::Addition => {
            let a: u32 = rng.gen_range(0..1000);
            let b: u32 = rng.gen_range(0..1000);
            format!("{a}+{b}={}\n", a + b)
        }
    }
}
