//! The pre-queue draw: those who joined before the start are placed in a
//! random order among themselves, drawn by a keyed permutation (six Feistel
//! rounds over SHA-1, cycle-walked). lua/lib/queue.lua computes its inverse.

use sha1::{Digest, Sha1};

/// The place (0-based) the draw gives join `join` (0-based) among `size` joins.
pub fn place_of(key: &str, size: u64, join: u64) -> u64 {
    let bits = bits_for(size);
    let mask = 1u64 << bits;
    let mut x = join;
    loop {
        let (mut l, mut r) = (x / mask, x % mask);
        for round in 1..=6 {
            (l, r) = (r, l ^ round_value(key, round, r, bits));
        }
        x = l * mask + r;
        if x < size {
            return x;
        }
    }
}

fn bits_for(size: u64) -> u32 {
    let mut bits = 1;
    while (1u128 << (2 * bits)) < size as u128 {
        bits += 1;
    }
    bits
}

fn round_value(key: &str, round: u32, half: u64, bits: u32) -> u64 {
    let digest = Sha1::digest(format!("{key}:{round}:{half}").as_bytes());
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as u64;
    first % (1u64 << bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_a_permutation() {
        for size in [1, 2, 3, 10, 17, 1000] {
            let mut seen: Vec<u64> = (0..size).map(|j| place_of("k3y", size, j)).collect();
            seen.sort();
            assert_eq!(seen, (0..size).collect::<Vec<_>>(), "size {size}");
        }
        let moved = (0..1000).filter(|j| place_of("k3y", 1000, *j) != *j).count();
        assert!(moved > 900, "{moved} of 1000 moved");
    }
}
