//! A stable 64-bit content hash of bytes (the key of caches on disk), at the
//! bottom of the layers so that data and tokenizer can both use it.

/// A 64-bit running hash of bytes (FNV-style, 8 bytes at a time), stable
/// across Rust versions (the key of a cache on disk must not change with the
/// compiler) and independent of how the bytes are split into updates.
#[derive(Debug, Clone)]
pub struct ContentHash {
    h: u64,
    len: u64,
    tail: Vec<u8>,
}

impl Default for ContentHash {
    fn default() -> Self {
        ContentHash {
            h: 0xcbf2_9ce4_8422_2325,
            len: 0,
            tail: Vec::with_capacity(8),
        }
    }
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl ContentHash {
    fn word(&mut self, w: &[u8]) {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        self.h = (self.h ^ v).wrapping_mul(FNV_PRIME).rotate_left(29);
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if !self.tail.is_empty() {
            let take = (8 - self.tail.len()).min(bytes.len());
            self.tail.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.tail.len() < 8 {
                return;
            }
            let w = std::mem::take(&mut self.tail);
            self.word(&w);
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.word(w);
        }
        self.tail.extend_from_slice(words.remainder());
    }

    /// The hash, with the length folded in.
    pub fn finish(&self) -> u64 {
        let mut h = self.h;
        for &b in &self.tail {
            h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
        }
        h ^= self.len.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_depends_on_every_byte_and_the_length() {
        let h = |b: &[u8]| {
            let mut c = ContentHash::default();
            c.update(b);
            c.finish()
        };
        assert_ne!(h(b"abcdefgh1"), h(b"abcdefgh2"));
        assert_ne!(h(b""), h(b"\0"));
        assert_eq!(h(b"same text"), h(b"same text"));
        // However the bytes are split into updates.
        let text = b"the quick brown fox jumps over the lazy dog";
        for cut in [0, 1, 3, 8, 9, 20, text.len()] {
            let mut c = ContentHash::default();
            c.update(&text[..cut]);
            c.update(&text[cut..cut.max(5).min(text.len())]);
            c.update(&text[cut.max(5).min(text.len())..]);
            assert_eq!(c.finish(), h(text), "cut {cut}");
        }
    }
}
