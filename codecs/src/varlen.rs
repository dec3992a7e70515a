//! Bounded length-prefix helpers shared by the binary protocol codecs.

use thiserror::Error;

/// A declared length that cannot be framed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LengthError {
    /// The declared length is larger than the protocol (or our configured limit) allows.
    #[error("declared length {declared} exceeds the limit of {limit} bytes")]
    TooLarge { declared: u64, limit: u64 },
    /// The declared length is smaller than the header that carries it.
    #[error("declared length {declared} is smaller than the minimum of {min} bytes")]
    TooSmall { declared: u64, min: u64 },
}

/// Checks a declared message length against `[min, limit]` before anything is allocated.
pub fn check_len(declared: u64, min: u64, limit: u64) -> Result<usize, LengthError> {
    if declared < min {
        return Err(LengthError::TooSmall { declared, min });
    }
    if declared > limit {
        return Err(LengthError::TooLarge { declared, limit });
    }
    usize::try_from(declared).map_err(|_| LengthError::TooLarge { declared, limit })
}

/// Reads a big-endian u32 at `at`, or `None` when `buf` is too short.
pub fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian i32 at `at`, or `None` when `buf` is too short.
pub fn le_i32(buf: &[u8], at: usize) -> Option<i32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_outside_the_bounds_are_rejected_before_allocation() {
        assert_eq!(check_len(5, 4, 10), Ok(5));
        assert_eq!(check_len(3, 4, 10), Err(LengthError::TooSmall { declared: 3, min: 4 }));
        assert_eq!(check_len(1 << 40, 4, 10), Err(LengthError::TooLarge { declared: 1 << 40, limit: 10 }));
    }

    #[test]
    fn short_buffers_yield_none_not_a_panic() {
        assert_eq!(be_u32(&[0, 0, 1], 0), None);
        assert_eq!(be_u32(&[0, 0, 1, 0], 0), Some(256));
        assert_eq!(le_i32(&[1, 0, 0, 0, 9], 1), Some(9 << 24));
        assert_eq!(le_i32(&[1, 0, 0, 0, 9], 2), None);
        assert_eq!(be_u32(&[1], usize::MAX), None);
    }
}
