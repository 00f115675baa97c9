//! Which partitions one sink process owns when several share the topics:
//! `flashsale sink --instance I/N` takes the partitions `p % N == I` of each
//! event topic. Ownership only spreads the work: two sinks that claim the same
//! partition (a misconfigured I, an old pod still stopping) never write it at
//! once, because each partition's task holds its fence (`fence`) and the
//! second one stands by until the first lets go.

use std::{fmt, str::FromStr};

/// `I/N`: this is sink I (from 0) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkInstance {
    pub index: u32,
    pub count: u32,
}

/// Most sinks one deployment may split the partitions over.
const MAX_COUNT: u32 = 1024;

impl Default for SinkInstance {
    /// The only sink: every partition.
    fn default() -> Self {
        SinkInstance { index: 0, count: 1 }
    }
}

impl SinkInstance {
    /// Whether `partition` is this sink's.
    pub fn owns(&self, partition: i32) -> bool {
        partition >= 0 && partition as u32 % self.count == self.index
    }
}

impl FromStr for SinkInstance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not I/N (this sink's index from 0, and how many sinks there are), e.g. 0/2");
        let (index, count) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_COUNT {
            return Err(format!("{s:?}: the number of sinks must be 1 to {MAX_COUNT}"));
        }
        if index >= count {
            return Err(format!("{s:?}: the index counts from 0, so it must be below {count}"));
        }
        Ok(SinkInstance { index, count })
    }
}

impl fmt::Display for SinkInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_split_the_partitions_without_overlap_or_gap() {
        let sinks: Vec<SinkInstance> = ["0/3", "1/3", "2/3"].iter().map(|s| s.parse().unwrap()).collect();
        for p in 0..12 {
            assert_eq!(sinks.iter().filter(|s| s.owns(p)).count(), 1, "partition {p}");
        }
        assert!(SinkInstance::default().owns(7));
        assert_eq!("1/2".parse::<SinkInstance>().unwrap().to_string(), "1/2");
    }

    #[test]
    fn bad_instances_are_refused() {
        for bad in ["", "1", "2/2", "0/0", "-1/2", "a/2", "1/b", "0/5000", "1/2/3"] {
            assert!(bad.parse::<SinkInstance>().is_err(), "{bad:?}");
        }
        assert_eq!(" 1 / 4 ".parse::<SinkInstance>().unwrap(), SinkInstance { index: 1, count: 4 });
    }
}
