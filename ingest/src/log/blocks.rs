//! Compressed blocks of log records.
//!
//! The event table stores events in blocks of consecutive sequence numbers, keyed by
//! the first one, each at most [`BLOCK_BYTES`] encoded. Consecutive events share most of their
//! bytes (account, ids with common prefixes, types, nearby timestamps), so a block
//! compressed with zstd takes a fraction of the records it holds one by one.
//!
//! A block's value is a fixed header and one zstd frame:
//!
//! ```text
//! count: u32 LE | raw_len: u32 LE | zstd( for each record: len (LEB128) | bytes )
//! ```
//!
//! `count` is outside the frame so the log's length (last key + count) is known without
//! decompressing anything; `raw_len` bounds the decompression buffer.

use std::fmt;

/// The most a block's encoded bytes may take. redb keeps a B-tree entry larger than half
/// of its 4 KiB page alone in a leaf of 4 KiB × a power of two, with 16 bytes of
/// its own (leaf header, value length, the u64 key): a block of 512 events, about 6.6
/// KiB, took an 8 KiB leaf and wasted 19% of it. Blocks are sealed by size instead,
/// close under 8 KiB with a margin ([`pack`]). A larger leaf compresses a few percent
/// better and costs every commit a larger tail block to rewrite.
pub const BLOCK_BYTES: usize = 8 * 1024 - 64;

/// [`pack`] seals a block once its encoded size is at least this share (1/16ths) of
/// [`BLOCK_BYTES`]: closer would cost more trial compressions per block.
const FULL_SIXTEENTHS: usize = 15;

/// Whether an encoded block is full: [`pack`] would seal it before anything else.
pub fn is_full(block: &[u8]) -> bool {
    block.len() >= BLOCK_BYTES * FULL_SIXTEENTHS / 16
}

/// Raw bytes per encoded byte assumed before any block was encoded (the simulator's
/// events compress about 4×): only the first guess depends on it.
const FIRST_RATIO: f64 = 4.0;

/// zstd level: 3 is zstd's default, a good ratio at several hundred MB/s.
const LEVEL: i32 = 3;

const HEADER: usize = 8;

/// The largest raw size a block may claim. Far above any real block (512 events of at
/// most a few KiB), it keeps a damaged header from asking for an absurd allocation.
const MAX_RAW: u64 = 256 * 1024 * 1024;

/// A block whose bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBlock(pub String);

impl fmt::Display for BadBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number of records in an encoded block, read from its header alone.
pub fn count(block: &[u8]) -> Result<usize, BadBlock> {
    let header: [u8; 4] = block
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| BadBlock(format!("block of {} bytes has no header", block.len())))?;
    Ok(u32::from_le_bytes(header) as usize)
}

/// Encodes `records` as one block.
pub fn encode<R: AsRef<[u8]>>(records: &[R]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(records.iter().map(|r| r.as_ref().len() + 2).sum());
    for record in records {
        let record = record.as_ref();
        prost::encoding::encode_varint(record.len() as u64, &mut raw);
        raw.extend_from_slice(record);
    }
    // zstd's in-memory compression of a buffer cannot fail but for allocation.
    let frame = zstd::bulk::compress(&raw, LEVEL).unwrap_or_default();
    let mut block = Vec::with_capacity(HEADER + frame.len());
    block.extend_from_slice(
        &u32::try_from(records.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    block.extend_from_slice(&u32::try_from(raw.len()).unwrap_or(u32::MAX).to_le_bytes());
    block.extend_from_slice(&frame);
    block
}

/// Packs `records` into blocks of at most [`BLOCK_BYTES`] each (a record larger than
/// that alone gets a block of its own): returns each block's record count and encoding,
/// in order. Every block but the last holds at least 15/16 of [`BLOCK_BYTES`] or could
/// not take its successor; the last one is the open tail, which later appends fill.
///
/// zstd's output size is only known by compressing, so each block is a guess from the
/// ratio of the block before, corrected by trial: most blocks take one compression,
/// the tail block of a small commit always one.
pub fn pack<R: AsRef<[u8]>>(records: &[R]) -> Vec<(usize, Vec<u8>)> {
    let raw_len = |rs: &[R]| -> usize { rs.iter().map(|r| r.as_ref().len()).sum() };
    // The number of leading records of `rs` (at least 1) whose raw bytes fit `target`.
    let fitting = |rs: &[R], target: f64| -> usize {
        let mut sum = 0usize;
        let n = rs
            .iter()
            .take_while(|r| {
                sum += r.as_ref().len() + 2;
                sum as f64 <= target
            })
            .count();
        n.max(1)
    };
    let mut ratio = FIRST_RATIO;
    let mut blocks = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let mut n = fitting(rest, BLOCK_BYTES as f64 * ratio * 0.97).min(rest.len());
        let mut block = encode(&rest[..n]);
        if block.len() > BLOCK_BYTES {
            // Too many: shrink in proportion until it fits (one record always does).
            while block.len() > BLOCK_BYTES && n > 1 {
                let scaled = n as f64 * BLOCK_BYTES as f64 / block.len() as f64 * 0.98;
                n = (scaled as usize).clamp(1, n - 1);
                block = encode(&rest[..n]);
            }
        } else {
            // Room left and records to fill it: grow while the block still fits.
            while !is_full(&block) && n < rest.len() {
                let r = raw_len(&rest[..n]) as f64 / block.len() as f64;
                let more = fitting(&rest[n..], (BLOCK_BYTES - block.len()) as f64 * r * 0.9);
                let grown = encode(&rest[..(n + more).min(rest.len())]);
                if grown.len() > BLOCK_BYTES {
                    break;
                }
                n = (n + more).min(rest.len());
                block = grown;
            }
        }
        ratio = raw_len(&rest[..n]) as f64 / block.len() as f64;
        blocks.push((n, block));
        rest = &rest[n..];
    }
    blocks
}

/// Decodes a block into its records, in order.
pub fn decode(block: &[u8]) -> Result<Vec<Vec<u8>>, BadBlock> {
    let (raw, records) = decode_ranges(block)?;
    Ok(records.into_iter().map(|r| raw[r].to_vec()).collect())
}

/// Decodes a block into its raw bytes and each record's range in them, in order:
/// for a reader that wants a few of its records ([`super::EventLog::read_positions`]),
/// without a copy of every record.
pub fn decode_ranges(block: &[u8]) -> Result<(Vec<u8>, Vec<std::ops::Range<usize>>), BadBlock> {
    let count = count(block)?;
    let raw_len = block
        .get(4..HEADER)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| BadBlock("block header is truncated".into()))?;
    // The frame records its own content size: both must agree before anything is
    // allocated, so a damaged header or frame is an error, not a huge allocation.
    let frame = &block[HEADER..];
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size == u64::from(raw_len) && size <= MAX_RAW => {}
        other => {
            return Err(BadBlock(format!(
                "block header says {raw_len} raw bytes, its frame {other:?}"
            )));
        }
    }
    let raw = zstd::bulk::decompress(frame, raw_len as usize)
        .map_err(|e| BadBlock(format!("block does not decompress: {e}")))?;
    if raw.len() != raw_len as usize {
        return Err(BadBlock(format!(
            "block decompresses to {} bytes, its header says {raw_len}",
            raw.len()
        )));
    }
    // Every record takes at least its length byte: `count` from a damaged header cannot
    // ask for more room than that.
    let mut records = Vec::with_capacity(count.min(raw.len()));
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let len = prost::encoding::decode_varint(&mut rest)
            .map_err(|e| BadBlock(format!("record {} length: {e}", records.len())))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= rest.len())
            .ok_or_else(|| BadBlock(format!("record {} overruns the block", records.len())))?;
        let start = raw.len() - rest.len();
        records.push(start..start + len);
        rest = &rest[len..];
    }
    if records.len() != count {
        return Err(BadBlock(format!(
            "block holds {} records, its header says {count}",
            records.len()
        )));
    }
    Ok((raw, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_block_decodes_to_its_records(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..40)) {
            let block = encode(&records);
            prop_assert_eq!(count(&block).unwrap(), records.len());
            prop_assert_eq!(decode(&block).unwrap(), records);
        }

        #[test]
        fn damaged_bytes_are_an_error_not_a_panic(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..50), 1..10), cut in 0usize..200, flip in any::<u8>()) {
            let mut block = encode(&records);
            let at = cut % block.len();
            block[at] ^= flip | 1;
            // Either an error or some records: never a panic, never more than claimed.
            if let Ok(decoded) = decode(&block) {
                prop_assert_eq!(decoded.len(), count(&block).unwrap());
            }
            let _ = decode(&block[..at]);
        }
    }

    /// The simulator's kind of record: similar, of varied lengths.
    fn records(n: usize, seed: u64) -> Vec<Vec<u8>> {
        (0..n as u64)
            .map(|i| {
                let x = (i ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                format!(
                    "sim-{seed}-{i} account 1 conversation_{} whatsapp inbox-{} agent-{} {}",
                    ["opened", "assigned", "message", "resolved"][(x % 4) as usize],
                    x % 7,
                    x % 31,
                    "x".repeat((x % 97) as usize)
                )
                .into_bytes()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn packed_blocks_hold_every_record_in_order_and_fit_their_leaf(
            n in 0usize..20_000,
            seed in any::<u64>(),
            huge in prop::option::of(0usize..20_000),
        ) {
            let mut records = records(n, seed);
            if let Some(at) = huge {
                // A record larger than a block.
                records.insert(at.min(records.len()), vec![7u8; BLOCK_BYTES * 2]);
            }
            let blocks = pack(&records);
            let mut decoded = Vec::new();
            for (i, (count, block)) in blocks.iter().enumerate() {
                prop_assert_eq!(count_of(block), *count);
                let records = decode(block).unwrap();
                prop_assert!(records.len() == 1 || block.len() <= BLOCK_BYTES, "block {i}: {} bytes", block.len());
                decoded.extend(records);
            }
            prop_assert_eq!(decoded, records);
        }
    }

    fn count_of(block: &[u8]) -> usize {
        count(block).unwrap()
    }

    #[test]
    fn sealed_blocks_fill_most_of_their_leaf() {
        let records = records(50_000, 3);
        let blocks = pack(&records);
        let sealed = &blocks[..blocks.len() - 1];
        let used: usize = sealed.iter().map(|(_, b)| b.len()).sum();
        let fill = used as f64 / (sealed.len() * BLOCK_BYTES) as f64;
        assert!(
            fill > 0.9,
            "{} sealed blocks {:.1}% full",
            sealed.len(),
            fill * 100.0
        );
        // One at a time, as a commit of one event appends to the open tail.
        let mut tail: Vec<Vec<u8>> = Vec::new();
        let mut sealed_one_by_one = 0;
        for record in &records[..5_000] {
            tail.push(record.clone());
            let mut packed = pack(&tail);
            if packed.len() > 1 {
                sealed_one_by_one += 1;
                assert!(packed[0].1.len() <= BLOCK_BYTES);
                let (_, open) = packed.pop().unwrap();
                tail = decode(&open).unwrap();
            }
        }
        assert!(sealed_one_by_one > 0);
    }

    #[test]
    fn similar_records_compress() {
        let records: Vec<Vec<u8>> = (0..512)
            .map(|i| {
                format!("sim-42-{i} account 1 conversation_opened whatsapp inbox-1").into_bytes()
            })
            .collect();
        let raw: usize = records.iter().map(Vec::len).sum();
        let block = encode(&records);
        assert!(block.len() * 4 < raw, "{} of {raw}", block.len());
    }
}
