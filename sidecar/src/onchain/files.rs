//! Reading operator files with a size bound that holds for any kind of file: the bound is
//! enforced while reading, so a device, a pipe or a file that grows cannot exhaust memory.

use std::{io::Read, path::Path};

/// Reads `path` as UTF-8 text of at most `limit` bytes; the error is a readable sentence.
pub fn read_text(path: &Path, limit: u64) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(limit.saturating_add(1)).read_to_string(&mut text).map_err(|e| e.to_string())?;
    if text.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(text)
}

/// Keccak-256 of `path`'s bytes, read in chunks, refusing files above `limit` bytes.
pub fn keccak_file(path: &Path, limit: u64) -> Result<alloy::primitives::B256, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader = file.take(limit.saturating_add(1));
    let mut hasher = alloy::primitives::Keccak256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            return Err(format!("larger than {limit} bytes"));
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_for_devices() {
        let err = read_text(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err, "larger than 1024 bytes");
        let err = keccak_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(err, "larger than 1048576 bytes");
    }

    #[test]
    fn hashes_like_keccak256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc");
        std::fs::write(&path, b"court order").unwrap();
        assert_eq!(keccak_file(&path, 100).unwrap(), alloy::primitives::keccak256(b"court order"));
    }
}
