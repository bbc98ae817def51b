//! The flow table's index: 4-tuple hash → slot of a connection, in 8 bytes per entry.
//!
//! Why not a `HashMap<FlowKey, Box<Connection>>`: its entries hold the 64-byte key, so a
//! table of 100 000 live connections spans ~10 MB and nearly every lookup misses the
//! caches. Here an entry is a 32-bit hash tag and a 32-bit slot number: the same table
//! is 2 MB, and the key itself is checked against the connection, which the caller
//! touches next anyway.
//!
//! Open addressing with linear probing at a load of at most one half; deletion shifts
//! later entries back instead of leaving tombstones, so probe sequences never grow with
//! churn (a big capture inserts and removes hundreds of thousands of connections). The
//! home bucket of an entry is the top bits of its hash, which the tag keeps, so the
//! table can grow without the keys.

/// An open-addressing index of `u32` values by 64-bit hash. It never looks at keys: the
/// caller confirms a candidate with `is_key`.
#[derive(Debug)]
pub struct FlowIndex {
    /// `0` is empty; otherwise `tag << 32 | (value + 1)`, `tag` the top 32 bits of the
    /// hash.
    slots: Vec<u64>,
    /// log2 of `slots.len()` (at most 32: the tag holds the bucket bits).
    bits: u32,
    len: usize,
}

/// Smallest table: 1024 slots (8 KiB).
const MIN_BITS: u32 = 10;

impl Default for FlowIndex {
    fn default() -> Self {
        FlowIndex::new()
    }
}

impl FlowIndex {
    pub fn new() -> FlowIndex {
        FlowIndex {
            slots: vec![0; 1 << MIN_BITS],
            bits: MIN_BITS,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn tag(hash: u64) -> u64 {
        hash >> 32
    }

    /// Home bucket of an entry with this tag.
    fn home(&self, tag: u64) -> usize {
        (tag >> (32 - self.bits)) as usize
    }

    /// Asks the CPU to fetch the cache line where a lookup of `hash` starts, ahead of
    /// the lookup.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let at = self.home(Self::tag(hash));
        prefetch_read(self.slots.as_ptr().wrapping_add(at));
    }

    /// The value stored under `hash` for which `is_key` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = Self::tag(hash);
        let mask = self.mask();
        let mut at = self.home(tag);
        loop {
            let entry = self.slots[at];
            if entry == 0 {
                return None;
            }
            if entry >> 32 == tag {
                let value = (entry as u32).wrapping_sub(1);
                if is_key(value) {
                    return Some(value);
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `value` under `hash` (the caller knows its key is not in the index yet).
    /// `value` must be below `u32::MAX`.
    pub fn insert(&mut self, hash: u64, value: u32) {
        debug_assert!(value < u32::MAX);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(Self::tag(hash) << 32 | u64::from(value + 1));
        self.len += 1;
    }

    fn place(&mut self, entry: u64) {
        let mask = self.mask();
        let mut at = self.home(entry >> 32);
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = entry;
    }

    fn grow(&mut self) {
        assert!(self.bits < 32, "flow index full");
        let old = std::mem::replace(&mut self.slots, vec![0; 1 << (self.bits + 1)]);
        self.bits += 1;
        for entry in old.into_iter().filter(|&e| e != 0) {
            self.place(entry);
        }
    }

    /// Removes the entry of `value` stored under `hash`; returns whether there was one.
    pub fn remove(&mut self, hash: u64, value: u32) -> bool {
        let tag = Self::tag(hash);
        let wanted = tag << 32 | u64::from(value.wrapping_add(1));
        let mask = self.mask();
        let mut at = self.home(tag);
        loop {
            let entry = self.slots[at];
            if entry == 0 {
                return false;
            }
            if entry == wanted {
                break;
            }
            at = (at + 1) & mask;
        }
        // Backward-shift deletion: move up each later entry of the run whose home lies
        // at or before the hole, so every entry stays reachable from its home bucket.
        let mut hole = at;
        let mut next = (at + 1) & mask;
        loop {
            let entry = self.slots[next];
            if entry == 0 {
                break;
            }
            let home = self.home(entry >> 32);
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = entry;
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = 0;
        self.len -= 1;
        true
    }
}

/// A hint to fetch the cache line at `p` (no effect where the CPU has no such hint).
#[inline]
pub fn prefetch_read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`prefetch_read`] of every cache line of the `len` bytes from `start`.
#[inline]
pub fn prefetch_read_bytes(start: *const u8, len: usize) {
    for offset in (0..len).step_by(64) {
        prefetch_read(start.wrapping_add(offset));
    }
}

/// [`prefetch_write`] of every cache line of the `len` bytes from `start`.
#[inline]
pub fn prefetch_write_bytes(start: *const u8, len: usize) {
    for offset in (0..len).step_by(64) {
        prefetch_write(start.wrapping_add(offset));
    }
}

/// A hint to fetch the cache line at `p` for writing (PREFETCHW): the line arrives owned,
/// not shared with the core that last read it, so the writes that follow need not ask
/// that core to give it up.
#[inline]
pub fn prefetch_write<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and touches no register or flag. `0F 0D /1` is
    // PREFETCHW where the CPU has it (AMD since K6, Intel since Broadwell) and a no-op
    // hint on older Intel CPUs.
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A deterministic stream of 64-bit "hashes", some sharing their top bits.
    fn hashes(n: usize) -> Vec<u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Every fourth shares the tag of the one before: collisions on purpose.
                if i % 4 == 3 {
                    (x & 0xffff_ffff) | 0xabcd_0000_0000_0000
                } else {
                    x
                }
            })
            .collect()
    }

    #[test]
    fn agrees_with_a_hash_map_through_growth_and_churn() {
        let hs = hashes(20_000);
        let mut index = FlowIndex::new();
        let mut model: HashMap<u32, u64> = HashMap::new();
        for step in 0..60_000u32 {
            let v = step % 20_000;
            let h = hs[v as usize];
            if model.remove(&v).is_some() {
                assert!(index.remove(h, v));
            } else if step % 3 != 0 {
                index.insert(h, v);
                model.insert(v, h);
            }
            assert_eq!(index.len(), model.len());
            if step % 1999 == 0 {
                for (&v, &h) in &model {
                    assert_eq!(index.find(h, |c| c == v), Some(v));
                }
            }
        }
        for (v, h) in hs.iter().enumerate() {
            let v = v as u32;
            let found = index.find(*h, |c| c == v);
            assert_eq!(found.is_some(), model.contains_key(&v), "value {v}");
        }
        assert!(!index.remove(hs[0] ^ 1, 0) || model.contains_key(&0));
    }

    #[test]
    fn is_key_decides_between_equal_tags() {
        let mut index = FlowIndex::new();
        index.insert(7 << 40, 1);
        index.insert(7 << 40, 2);
        assert_eq!(index.find(7 << 40, |v| v == 2), Some(2));
        assert_eq!(index.find(7 << 40, |v| v == 1), Some(1));
        assert_eq!(index.find(7 << 40, |v| v == 3), None);
        assert!(index.remove(7 << 40, 1));
        assert_eq!(index.find(7 << 40, |v| v == 2), Some(2));
        assert!(!index.remove(7 << 40, 1));
    }
}
