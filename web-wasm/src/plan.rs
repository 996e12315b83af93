//! The part plan: how a file of a given size is cut into multipart-upload parts.
//!
//! S3 fixes the rules (every part but the last at least 5 MiB, at most 5 GiB, at most
//! 10,000 parts); the plan grows the part size with the file so that anything up to the
//! largest S3 object (5 TiB) fits. Backend and browser both compute it from the same code,
//! so a part number always means the same byte range on both sides.

use std::ops::Range;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// S3's floor for every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's ceiling for one part (and for one single PUT).
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// S3's ceiling on the number of parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// S3's largest object.
pub const MAX_OBJECT_SIZE: u64 = 5 * TIB;
/// The default part size: big enough that per-part overhead (a sign, a PUT, a report)
/// is small against the bytes, small enough that 4-6 parts in flight stay light in a
/// browser's memory and a lost part costs little to send again.
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// Grown part sizes are rounded up to whole MiB so they stay readable in logs.
const PART_SIZE_ALIGN: u64 = MIB;

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a file of {size} bytes is over the largest object S3 can store ({MAX_OBJECT_SIZE} bytes)")]
    TooLarge { size: u64 },
    #[error("the target part size {0} is outside S3's limits ({MIN_PART_SIZE}..={MAX_PART_SIZE} bytes)")]
    BadPartSize(u64),
}

/// How one file is cut into parts. A file no larger than one part is sent as a single PUT
/// (`part_count == 1`, including the empty file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub size: u64,
    pub part_size: u64,
    pub part_count: u32,
}

impl Plan {
    /// Plans `size` bytes with parts of `target_part_size`, grown as needed to fit.
    pub fn new(size: u64, target_part_size: u64) -> Result<Plan, PlanError> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&target_part_size) {
            return Err(PlanError::BadPartSize(target_part_size));
        }
        if size > MAX_OBJECT_SIZE {
            return Err(PlanError::TooLarge { size });
        }
        let needed = size.div_ceil(MAX_PARTS).div_ceil(PART_SIZE_ALIGN) * PART_SIZE_ALIGN;
        let part_size = target_part_size.max(needed);
        let part_count = size.div_ceil(part_size).max(1);
        // Both bounds hold by construction: part_count <= MAX_PARTS fits u32.
        let part_count = u32::try_from(part_count).map_err(|_| PlanError::TooLarge { size })?;
        Ok(Plan { size, part_size, part_count })
    }

    /// Whether the file goes up as one PUT rather than a multipart upload.
    pub fn is_single(&self) -> bool {
        self.part_count == 1
    }

    /// The byte range of part `number` (1-based, as in S3), or `None` outside the plan.
    pub fn part_range(&self, number: u32) -> Option<Range<u64>> {
        if number == 0 || number > self.part_count {
            return None;
        }
        let start = u64::from(number - 1) * self.part_size;
        let end = (start + self.part_size).min(self.size);
        Some(start..end)
    }

    /// Every part's number and byte range, in order.
    pub fn parts(&self) -> impl Iterator<Item = (u32, Range<u64>)> {
        let plan = *self;
        (1..=plan.part_count).filter_map(move |n| Some((n, plan.part_range(n)?)))
    }

    /// The length of part `number`, or `None` outside the plan.
    pub fn part_len(&self, number: u32) -> Option<u64> {
        self.part_range(number).map(|r| r.end - r.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(size: u64, target: u64) {
        let plan = Plan::new(size, target).unwrap();
        assert!(plan.part_count >= 1);
        assert!(u64::from(plan.part_count) <= MAX_PARTS, "{size}: {plan:?}");
        assert!(plan.part_size <= MAX_PART_SIZE);
        assert!(plan.part_size >= target);
        let mut covered = 0;
        let numbers: Vec<u32> = plan.parts().map(|(n, _)| n).collect();
        assert_eq!(numbers, (1..=plan.part_count).collect::<Vec<_>>());
        for (n, r) in plan.parts() {
            assert_eq!(Some(r.clone()), plan.part_range(n));
            assert_eq!(r.start, covered, "{size}: part {n} leaves a gap");
            let len = r.end - r.start;
            if n < plan.part_count {
                assert!(len >= MIN_PART_SIZE, "{size}: part {n} is {len} bytes");
                assert_eq!(len, plan.part_size);
            } else if size > 0 {
                assert!(len > 0, "{size}: empty last part");
            }
            covered = r.end;
        }
        assert_eq!(covered, size);
        assert_eq!(plan.part_range(0), None);
        assert_eq!(plan.part_range(plan.part_count + 1), None);
    }

    #[test]
    fn walks_sizes_from_empty_to_the_largest_object() {
        let mut sizes = vec![0, 1, 2, MIN_PART_SIZE - 1, MIN_PART_SIZE, MAX_OBJECT_SIZE];
        for base in [DEFAULT_PART_SIZE, 2 * DEFAULT_PART_SIZE, 100 * DEFAULT_PART_SIZE] {
            sizes.extend([base - 1, base, base + 1]);
        }
        // Where the part size starts to grow, and past it.
        let edge = DEFAULT_PART_SIZE * MAX_PARTS;
        sizes.extend([edge - 1, edge, edge + 1, 2 * edge, MAX_OBJECT_SIZE - 1]);
        // A spread of sizes in between, deterministic.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sizes.push(x % (MAX_OBJECT_SIZE + 1));
        }
        for size in sizes {
            check(size, DEFAULT_PART_SIZE);
        }
        for size in [0, MIN_PART_SIZE * 3 + 7, 3 * TIB] {
            for target in [MIN_PART_SIZE, 64 * MIB, MAX_PART_SIZE] {
                check(size, target);
            }
        }
    }

    #[test]
    fn known_plans() {
        assert_eq!(Plan::new(0, DEFAULT_PART_SIZE).unwrap().part_count, 1);
        assert_eq!(Plan::new(0, DEFAULT_PART_SIZE).unwrap().part_len(1), Some(0));
        let one = Plan::new(DEFAULT_PART_SIZE, DEFAULT_PART_SIZE).unwrap();
        assert!(one.is_single());
        let two = Plan::new(DEFAULT_PART_SIZE + 1, DEFAULT_PART_SIZE).unwrap();
        assert_eq!((two.part_count, two.part_len(2)), (2, Some(1)));
        let gib = Plan::new(GIB, DEFAULT_PART_SIZE).unwrap();
        assert_eq!((gib.part_size, gib.part_count), (8 * MIB, 128));
        let max = Plan::new(MAX_OBJECT_SIZE, DEFAULT_PART_SIZE).unwrap();
        assert_eq!(max.part_size, 525 * MIB);
        assert_eq!(max.part_count, 9_987);
        // Offsets past 4 GiB stay exact (no 32-bit truncation).
        let big = Plan::new(5 * GIB + 3, DEFAULT_PART_SIZE).unwrap();
        assert_eq!(big.part_range(641), Some(5 * GIB..5 * GIB + 3));
    }

    #[test]
    fn refuses_what_s3_cannot_hold() {
        assert_eq!(
            Plan::new(MAX_OBJECT_SIZE + 1, DEFAULT_PART_SIZE),
            Err(PlanError::TooLarge { size: MAX_OBJECT_SIZE + 1 })
        );
        assert_eq!(Plan::new(1, MIB), Err(PlanError::BadPartSize(MIB)));
        assert_eq!(Plan::new(1, 6 * GIB), Err(PlanError::BadPartSize(6 * GIB)));
    }
}
