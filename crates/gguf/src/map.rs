//! Read-only memory maps of GGUF files.
//!
//! Invariant: the mapping lives as long as the `Mapped` value and is never written; tensor
//! slices borrow from it.

use crate::GgufError;
use std::path::Path;

pub(crate) enum Mapped {
    Map(memmap2::Mmap),
    /// Zero-length files cannot be mapped on every platform.
    Empty,
}

impl Mapped {
    pub(crate) fn open(path: &Path) -> Result<Self, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Ok(Self::Empty);
        }
        // WORKAROUND: mapping needs `unsafe` because another process could truncate or modify
        // the file while it is mapped. Model files are treated as read-only inputs; every slice
        // handed out was bounds-checked against the length seen at open time.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(Self::Map(map))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Map(m) => m,
            Self::Empty => &[],
        }
    }
}
