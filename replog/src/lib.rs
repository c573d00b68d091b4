//! `flash-replog`: the replicated log.

pub mod crc32;
pub mod wal;
