use super::*;

fn store() -> (tempfile::TempDir, ConversationStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ConversationStore::open(dir.path().join("conversations")).unwrap();
    (dir, s)
}

#[test]
fn create_get_list_rename_delete() {
    let (_d, s) = store();
    let mut c = s.create(None).unwrap();
    assert_eq!(c.title, "New chat");
    c.messages.push(new_message(Role::User, "hello"));
    c.updated_at_ms -= 1000.0; // clearly older than the next one
    s.save(&c).unwrap();
    let back = s.get(&c.id).unwrap();
    assert_eq!(back, c);

    let c2 = s.create(Some("second".into())).unwrap();
    let list = s.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, c2.id, "most recent first");
    assert_eq!(list[1].message_count, 1);

    let renamed = s.rename(&c.id, "  Paris  ").unwrap();
    assert_eq!(renamed.title, "Paris");
    s.delete(&c.id).unwrap();
    assert!(matches!(s.get(&c.id), Err(ConversationError::NotFound(_))));
    assert!(matches!(
        s.delete(&c.id),
        Err(ConversationError::NotFound(_))
    ));
}

#[test]
fn ids_cannot_escape_the_directory() {
    let (_d, s) = store();
    for bad in ["../x", "a/b", "", "..", "a.json"] {
        assert!(
            matches!(s.get(bad), Err(ConversationError::InvalidId(_))),
            "{bad}"
        );
    }
}

#[test]
fn corrupt_and_temp_files_are_skipped_not_deleted() {
    let (_d, s) = store();
    let good = s.create(Some("good".into())).unwrap();
    let bad_path = s.dir().join("deadbeef.json");
    std::fs::write(&bad_path, b"{ not json").unwrap();
    // A temp file left behind by a process killed mid-write.
    std::fs::write(s.dir().join(".x.json.123.tmp"), b"{\"half\":").unwrap();
    let list = s.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, good.id);
    assert!(
        bad_path.exists(),
        "a corrupt file is kept for the user to recover"
    );
    assert!(matches!(
        s.get("deadbeef"),
        Err(ConversationError::Corrupt { .. })
    ));
}

#[test]
fn newer_format_is_refused_not_overwritten() {
    let (_d, s) = store();
    let mut c = s.create(None).unwrap();
    c.version = FORMAT_VERSION + 1;
    s.save(&c).unwrap();
    assert!(matches!(
        s.get(&c.id),
        Err(ConversationError::TooNew { .. })
    ));
}

#[test]
fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.json");
    write_atomic(&p, b"first version, long long long").unwrap();
    write_atomic(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn titles_come_from_the_first_line() {
    assert_eq!(
        title_from("\n  What is the capital of France?\nmore"),
        "What is the capital of France?"
    );
    assert_eq!(title_from(""), "New chat");
    let long = "x".repeat(100);
    assert_eq!(title_from(&long).chars().count(), 49);
}
