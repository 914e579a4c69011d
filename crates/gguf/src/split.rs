//! Split GGUF sets: `<base>-00001-of-00009.gguf` … `<base>-00009-of-00009.gguf`.
//!
//! Invariant: a set opens only when every shard is present, each says it is the shard its name
//! says (`split.no`, 0-based) of the same count (`split.count`), and the union of tensors has no
//! duplicate and exactly `split.tensors.count` entries.

use crate::{GgufError, GgufFile, GgufModel, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A shard file name decomposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    pub dir: PathBuf,
    /// Everything before `-NNNNN-of-NNNNN.gguf`.
    pub base: String,
    /// 1-based shard number in the name.
    pub index: u32,
    pub count: u32,
}

impl SplitName {
    /// Recognises `<base>-NNNNN-of-NNNNN.gguf`.
    pub fn parse(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let stem = name.strip_suffix(".gguf")?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (base, index) = rest.rsplit_once('-')?;
        if index.len() != 5 || count.len() != 5 || base.is_empty() {
            return None;
        }
        let index: u32 = index.parse().ok()?;
        let count: u32 = count.parse().ok()?;
        if index == 0 || count == 0 || index > count {
            return None;
        }
        Some(Self {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            base: base.to_string(),
            index,
            count,
        })
    }

    /// Path of shard `i` (1-based).
    pub fn shard_path(&self, i: u32) -> PathBuf {
        self.dir
            .join(format!("{}-{:05}-of-{:05}.gguf", self.base, i, self.count))
    }
}

/// The paths of all shards of the set `path` belongs to (just `path` for a single file).
pub fn split_parts(path: &Path) -> Vec<PathBuf> {
    match SplitName::parse(path) {
        Some(n) => (1..=n.count).map(|i| n.shard_path(i)).collect(),
        None => vec![path.to_path_buf()],
    }
}

pub(crate) fn open_set(name: SplitName) -> Result<GgufModel, GgufError> {
    let missing: Vec<String> = (1..=name.count)
        .map(|i| name.shard_path(i))
        .filter(|p| !p.is_file())
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if !missing.is_empty() {
        return Err(GgufError::Split(format!(
            "{} of {} shards missing in {}: {}",
            missing.len(),
            name.count,
            name.dir.display(),
            missing.join(", ")
        )));
    }
    let mut files = Vec::with_capacity(name.count as usize);
    for i in 1..=name.count {
        let path = name.shard_path(i);
        let f = GgufFile::open(&path)?;
        let no = f.get("split.no").and_then(Value::as_u64);
        let count = f.get("split.count").and_then(Value::as_u64);
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if count != Some(name.count as u64) {
            return Err(GgufError::Split(format!(
                "{file}: split.count is {count:?}, the file name says {}",
                name.count
            )));
        }
        if no != Some(i as u64 - 1) {
            return Err(GgufError::Split(format!(
                "{file}: split.no is {no:?}, expected {} (0-based) — shards from different sets mixed?",
                i - 1
            )));
        }
        files.push(f);
    }
    let expected = files[0].get("split.tensors.count").and_then(Value::as_u64);
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for f in &files {
        for t in &f.header().tensors {
            total += 1;
            if !seen.insert(t.name.clone()) {
                return Err(GgufError::Split(format!(
                    "tensor {} appears in more than one shard (second in {})",
                    t.name,
                    f.path().display()
                )));
            }
        }
    }
    if let Some(expected) = expected {
        if expected != total {
            return Err(GgufError::Split(format!(
                "split.tensors.count says {expected} tensors, the {} shards hold {total}",
                files.len()
            )));
        }
    }
    Ok(GgufModel::from_files(files, Some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shard_names() {
        let n = SplitName::parse(Path::new("/m/GLM-5.2-UD-IQ2_M-00002-of-00006.gguf")).unwrap();
        assert_eq!(n.base, "GLM-5.2-UD-IQ2_M");
        assert_eq!((n.index, n.count), (2, 6));
        assert_eq!(
            n.shard_path(6),
            PathBuf::from("/m/GLM-5.2-UD-IQ2_M-00006-of-00006.gguf")
        );
        for bad in [
            "/m/x.gguf",
            "/m/x-1-of-2.gguf",
            "/m/x-00003-of-00002.gguf",
            "/m/-00001-of-00002.gguf",
            "/m/x-00001-of-00002.bin",
        ] {
            assert!(SplitName::parse(Path::new(bad)).is_none(), "{bad}");
        }
        assert_eq!(
            split_parts(Path::new("/m/a.gguf")),
            vec![PathBuf::from("/m/a.gguf")]
        );
        assert_eq!(split_parts(Path::new("/m/a-00001-of-00002.gguf")).len(), 2);
    }
}
