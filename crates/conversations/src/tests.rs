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
    tree::push(&mut c, new_message(Role::User, "hello"));
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

#[test]
fn a_partial_reply_left_by_a_killed_app_is_appended_as_interrupted() {
    let (_d, s) = store();
    let mut c = s.create(None).unwrap();
    tree::push(&mut c, new_message(Role::User, "tell me"));
    s.save(&c).unwrap();
    let mut reply = new_message(Role::Assistant, "Half of the ans");
    reply.reasoning = Some("thinking".into());
    s.save_partial(&c.id, &reply).unwrap();
    // The partial file is not a conversation.
    assert_eq!(s.list().unwrap().len(), 1);

    assert_eq!(s.recover_interrupted().unwrap(), vec![c.id.clone()]);
    let back = s.get(&c.id).unwrap();
    assert_eq!(back.messages.len(), 2);
    let got = &back.messages[1];
    assert_eq!(got.content, "Half of the ans");
    assert_eq!(got.reasoning.as_deref(), Some("thinking"));
    assert_eq!(got.finish_reason, Some(FinishReason::Interrupted));
    assert_eq!(
        got.parent_id,
        back.messages[0].id.clone().into(),
        "it answers the last message"
    );
    assert_eq!(back.current_id, Some(got.id.clone()), "and is shown");
    // Recovered once: the next start finds nothing.
    assert!(s.recover_interrupted().unwrap().is_empty());
    assert_eq!(s.get(&c.id).unwrap().messages.len(), 2);

    // A reply already saved whole, or holding no text, is dropped; so is one whose conversation is gone.
    s.save_partial(&c.id, got).unwrap();
    let empty = s.create(None).unwrap();
    s.save_partial(&empty.id, &new_message(Role::Assistant, ""))
        .unwrap();
    let gone = s.create(None).unwrap();
    s.save_partial(&gone.id, &reply).unwrap();
    fs::remove_file(s.dir().join(format!("{}.json", gone.id))).unwrap();
    assert!(s.recover_interrupted().unwrap().is_empty());
    assert_eq!(s.get(&c.id).unwrap().messages.len(), 2);
    assert!(s.get(&empty.id).unwrap().messages.is_empty());
    let left: Vec<_> = fs::read_dir(s.dir()).unwrap().collect();
    assert_eq!(left.len(), 2, "only the two conversations remain");
}

#[test]
fn an_unreadable_partial_reply_is_kept_for_the_next_start_and_deleting_drops_it() {
    let (_d, s) = store();
    let c = s.create(None).unwrap();
    let partial = s.dir().join(format!("{}.partial.json", c.id));
    fs::write(&partial, b"{\"id\": \"x\", trunc").unwrap();
    assert!(s.recover_interrupted().unwrap().is_empty());
    assert!(
        partial.exists(),
        "a partial that cannot be read is left in place"
    );
    assert!(s.get(&c.id).unwrap().messages.is_empty());
    s.delete(&c.id).unwrap();
    assert!(
        !partial.exists(),
        "deleting the conversation deletes its partial reply"
    );
    assert!(matches!(
        s.save_partial("../x", &new_message(Role::Assistant, "a")),
        Err(ConversationError::InvalidId(_))
    ));
}

fn linked(id: &str, parent: Option<&str>) -> Message {
    Message {
        id: id.into(),
        parent_id: parent.map(Into::into),
        ..new_message(Role::User, id)
    }
}

fn ids(c: &Conversation) -> Vec<&str> {
    tree::path(c).iter().map(|m| m.id.as_str()).collect()
}

#[test]
fn branches_are_paths_through_the_message_tree() {
    let (_d, s) = store();
    let mut c = s.create(None).unwrap();
    assert!(tree::path(&c).is_empty());
    // a ─ b ─ c
    //   └ b2 ─ c2
    // a2
    for m in [
        linked("a", None),
        linked("b", Some("a")),
        linked("c", Some("b")),
        linked("b2", Some("a")),
        linked("c2", Some("b2")),
        linked("a2", None),
    ] {
        tree::attach(&mut c, m);
    }
    assert_eq!(ids(&c), ["a2"]);
    assert_eq!(tree::versions(&c, "b2"), ["b", "b2"]);
    assert_eq!(tree::versions(&c, "a"), ["a", "a2"]);
    assert_eq!(tree::versions(&c, "c"), ["c"]);
    assert!(tree::versions(&c, "zz").is_empty());
    assert!(tree::select(&mut c, "a"));
    assert_eq!(ids(&c), ["a", "b2", "c2"], "the version written last below");
    assert!(tree::select(&mut c, "b"));
    assert_eq!(ids(&c), ["a", "b", "c"]);
    // Away and back: the branch as it was left, not the newest.
    assert!(tree::select(&mut c, "a2"));
    assert_eq!(ids(&c), ["a2"]);
    assert!(tree::select(&mut c, "a"));
    assert_eq!(ids(&c), ["a", "b", "c"]);
    // Selecting a deep message shows every version above it.
    assert!(tree::select(&mut c, "c2"));
    assert_eq!(ids(&c), ["a", "b2", "c2"]);
    assert!(tree::select(&mut c, "b"));
    tree::push(&mut c, linked("d", None));
    assert_eq!(ids(&c), ["a", "b", "c", "d"]);
    assert!(!tree::select(&mut c, "zz"));
    s.save(&c).unwrap();
    assert_eq!(s.get(&c.id).unwrap(), c);
    assert_eq!(s.list().unwrap()[0].message_count, 4);
}

#[test]
fn broken_links_show_what_they_can_reach() {
    let (_d, s) = store();
    let mut c = s.create(None).unwrap();
    // A parent that does not exist, and a loop: no panic, no endless walk.
    tree::attach(&mut c, linked("x", Some("missing")));
    tree::attach(&mut c, linked("y", Some("x")));
    assert_eq!(ids(&c), ["x", "y"]);
    c.messages = vec![linked("p", Some("q")), linked("q", Some("p"))];
    c.current_id = Some("p".into());
    assert_eq!(ids(&c).len(), 2);
    assert!(tree::select(&mut c, "q"));
    c.current_id = Some("gone".into());
    assert!(ids(&c).is_empty());
}

#[test]
fn concurrent_updates_lose_nothing() {
    // Eight writers (a reply, a title, a rename...) each change the same file 25 times through
    // `update`, with a clone of the store as the app's services hold it: every change is kept.
    let (_d, s) = store();
    let c = s.create(None).unwrap();
    std::thread::scope(|scope| {
        for w in 0..8 {
            let (s, id) = (s.clone(), c.id.clone());
            scope.spawn(move || {
                for i in 0..25 {
                    s.update(&id, |conv| {
                        tree::push(conv, new_message(Role::User, format!("{w}/{i}")));
                        Change::Save(())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(s.get(&c.id).unwrap().messages.len(), 200);
    // `Keep` leaves the file as it was and returns the saved version.
    let (kept, ()) = s
        .update(&c.id, |conv| {
            conv.title = "not saved".into();
            Change::Keep(())
        })
        .unwrap();
    assert_eq!(kept.title, "New chat");
    assert_eq!(s.get(&c.id).unwrap().title, "New chat");
    assert!(matches!(
        s.update("missing", |_| Change::Keep(())),
        Err(ConversationError::NotFound(_))
    ));
}
