//! Importing models that are already on disk (any shard adds its split set), and removing them
//! again without touching the user's files.

use localglm_models::{Library, ModelsError};
use localglm_testkit::glm52;

#[test]
fn import_by_any_shard_then_remove_keeps_the_files() {
    let lib_dir = tempfile::tempdir().unwrap();
    let lib = Library::new(lib_dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let files =
        glm52::write_sparse_split(elsewhere.path(), "GLM-5.2-UD-Q2_K_XL", glm52::UD_Q2_K_XL, 3);
    let info = lib.import(&files[1]).unwrap();
    assert_eq!(info.name, "GLM-5.2-UD-Q2_K_XL-00001-of-00003");
    assert_eq!(info.architecture.as_deref(), Some("glm-dsa"));
    // Importing again (another shard) does not list it twice.
    lib.import(&files[2]).unwrap();
    let listed = lib.installed().unwrap();
    assert_eq!(listed.len(), 1);
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(listed[0].size_bytes as u64, total);
    // Removing an imported model forgets it; its files stay.
    lib.delete(std::path::Path::new(&listed[0].path)).unwrap();
    assert!(lib.installed().unwrap().is_empty());
    assert!(files.iter().all(|f| f.exists()));
    // A set with a missing shard, and a file that is not a model, are refused clearly.
    std::fs::remove_file(&files[2]).unwrap();
    let e = lib.import(&files[0]).unwrap_err();
    assert!(matches!(e, ModelsError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("00003-of-00003"), "{e}");
    let junk = elsewhere.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model").unwrap();
    assert!(matches!(
        lib.import(&junk),
        Err(ModelsError::Invalid { .. })
    ));
    assert!(matches!(
        lib.import(&elsewhere.path().join("missing.gguf")),
        Err(ModelsError::Missing(_))
    ));
}
