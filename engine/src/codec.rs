//! Serialization of everything that crosses a node boundary or hits a disk.
//! Messages are bincode; durable blobs are framed with a length and a CRC32 so
//! that torn writes and corrupted reads are detected, never restored from.

use serde::{de::DeserializeOwned, Serialize};

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).expect("in-memory serialization cannot fail")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::deserialize(bytes).map_err(|e| format!("decode: {e}"))
}

/// `len (u32 LE) | crc32 (u32 LE) | payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the header or the length announce (torn write).
    Truncated,
    /// The checksum does not match (corruption).
    Checksum,
}

/// Read one frame from the start of `bytes`: the payload and the bytes used.
pub fn unframe(bytes: &[u8]) -> Result<(&[u8], usize), FrameError> {
    if bytes.len() < 8 {
        return Err(FrameError::Truncated);
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    if bytes.len() < 8 + len {
        return Err(FrameError::Truncated);
    }
    let payload = &bytes[8..8 + len];
    if crc32fast::hash(payload) != crc {
        return Err(FrameError::Checksum);
    }
    Ok((payload, 8 + len))
}

/// Encode a value as one checksummed frame.
pub fn encode_framed<T: Serialize>(v: &T) -> Vec<u8> {
    frame(&encode(v))
}

/// Decode a blob that must be exactly one intact frame.
pub fn decode_framed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (payload, used) = unframe(bytes).map_err(|e| format!("corrupt blob: {e:?}"))?;
    if used != bytes.len() {
        return Err(format!("corrupt blob: {} trailing bytes", bytes.len() - used));
    }
    decode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_roundtrip_and_detection() {
        let f = frame(b"hello world");
        assert_eq!(unframe(&f).unwrap(), (&b"hello world"[..], f.len()));
        assert_eq!(unframe(&f[..f.len() - 1]), Err(FrameError::Truncated));
        let mut bad = f.clone();
        bad[10] ^= 0x40;
        assert_eq!(unframe(&bad), Err(FrameError::Checksum));
        assert!(decode_framed::<u64>(&bad).is_err());
    }
}
