//! Compressed blocks of log records.
//!
//! The event table stores events in blocks of up to [`BLOCK_EVENTS`] consecutive
//! sequence numbers, keyed by the first one. Consecutive events share most of their
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

/// Records per block. The last block is rewritten by each commit until it is full, so
/// this bounds the work one commit adds (one block of about 50 KiB raw, ~0.1 ms of
/// zstd) against how well a block compresses.
pub const BLOCK_EVENTS: usize = 512;

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

    #[test]
    fn similar_records_compress() {
        let records: Vec<Vec<u8>> = (0..BLOCK_EVENTS)
            .map(|i| {
                format!("sim-42-{i} account 1 conversation_opened whatsapp inbox-1").into_bytes()
            })
            .collect();
        let raw: usize = records.iter().map(Vec::len).sum();
        let block = encode(&records);
        assert!(block.len() * 4 < raw, "{} of {raw}", block.len());
    }
}
