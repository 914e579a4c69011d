use super::*;
use crate::new_message;
use localglm_protocol::Message;

fn store() -> (tempfile::TempDir, ConversationStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ConversationStore::open(dir.path().join("c")).unwrap();
    (dir, s)
}

/// "Paris?" answered twice (the second answer shown), the first answer with reasoning.
fn branched(s: &ConversationStore) -> Conversation {
    let mut c = s.create(Some("Trip to Paris".into())).unwrap();
    tree::push(&mut c, new_message(Role::User, "What to see in Paris?"));
    let asked = c.current_id.clone();
    let mut first = new_message(Role::Assistant, "The **Louvre**.");
    first.reasoning = Some("They want *sights*.".into());
    first.model = Some("GLM-5.2".into());
    tree::push(&mut c, first);
    let second = Message {
        parent_id: asked,
        ..new_message(Role::Assistant, "The Eiffel tower.")
    };
    tree::attach(&mut c, second);
    s.save(&c).unwrap();
    c
}

#[test]
fn markdown_is_the_branch_shown_with_reasoning_folded() {
    let (_d, s) = store();
    let mut c = branched(&s);
    assert_eq!(
        to_markdown(&c),
        "# Trip to Paris\n\n## You\n\nWhat to see in Paris?\n\n## Assistant\n\nThe Eiffel tower.\n"
    );
    let first = c.messages[1].id.clone();
    tree::select(&mut c, &first);
    assert_eq!(
        to_markdown(&c),
        "# Trip to Paris\n\n## You\n\nWhat to see in Paris?\n\n## Assistant (GLM-5.2)\n\n\
         <details>\n<summary>Reasoning</summary>\n\nThey want *sights*.\n\n</details>\n\n\
         The **Louvre**.\n"
    );
}

#[test]
fn json_round_trips_every_branch_as_a_new_conversation() {
    let (_d, s) = store();
    let c = branched(&s);
    let json = to_json(&c);
    let back = s.import(&json).unwrap();
    assert_ne!(back.id, c.id, "a copy, never an overwrite");
    assert_eq!(back.messages, c.messages);
    assert_eq!(back.current_id, c.current_id);
    assert_eq!(back.shown, c.shown);
    assert_eq!(s.get(&back.id).unwrap(), back);
    assert_eq!(s.get(&c.id).unwrap(), c, "the original is untouched");
    assert_eq!(s.list().unwrap()[0].id, back.id, "shown first");
    // Twice: two copies.
    s.import(&json).unwrap();
    assert_eq!(s.list().unwrap().len(), 3);
}

#[test]
fn a_format_1_export_is_read_as_one_branch() {
    let (_d, s) = store();
    let json = serde_json::json!({
        "format": EXPORT_FORMAT,
        "conversation": {
            "version": 1, "id": "x", "title": "", "created_at_ms": 1.0, "updated_at_ms": 1.0,
            "messages": [
                {"id": "u", "role": "user", "content": "hi", "created_at_ms": 1.0},
                {"id": "a", "role": "assistant", "content": "hello", "created_at_ms": 2.0}
            ]
        }
    });
    let c = s.import(&json.to_string()).unwrap();
    assert_eq!(c.title, "Imported chat");
    assert_eq!(c.version, FORMAT_VERSION);
    assert_eq!(tree::path(&c).len(), 2);
}

#[test]
fn malformed_files_are_refused_and_change_nothing() {
    let (_d, s) = store();
    let c = branched(&s);
    let good: serde_json::Value = serde_json::from_str(&to_json(&c)).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        v.to_string()
    };
    let cases = [
        ("{ not json".to_string(), "not JSON"),
        ("[]".to_string(), "\"format\""),
        (
            with(&|v| v["format"] = "localglm-presets".into()),
            "\"format\"",
        ),
        (with(&|v| v["conversation"]["version"] = 99.into()), "newer"),
        (
            with(&|v| v["conversation"]["messages"][0]["role"] = "robot".into()),
            "unknown variant",
        ),
        (
            with(&|v| v["conversation"]["messages"][1]["parent_id"] = "nowhere".into()),
            "follows nowhere",
        ),
        (
            with(&|v| {
                v["conversation"]["messages"][2]["id"] =
                    v["conversation"]["messages"][1]["id"].clone()
            }),
            "two messages",
        ),
        (
            with(&|v| v["conversation"]["current_id"] = "gone".into()),
            "ends at gone",
        ),
        (
            with(&|v| v["conversation"]["messages"] = serde_json::json!("x")),
            "invalid type",
        ),
    ];
    for (json, why) in cases {
        let e = s.import(&json).unwrap_err();
        assert!(
            matches!(&e, ConversationError::NotAnExport(m) if m.contains(why)),
            "{why}: {e}"
        );
    }
    let names: Vec<_> = std::fs::read_dir(s.dir()).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing was written");
}

#[test]
fn file_names_are_safe() {
    assert_eq!(file_stem("Trip to Paris"), "Trip to Paris");
    assert_eq!(file_stem("../../etc/passwd"), "etc_passwd");
    assert_eq!(file_stem("  "), "conversation");
    assert_eq!(file_stem("a/b:c*d?"), "a_b_c_d");
    assert_eq!(file_stem(&"x".repeat(100)).len(), 60);
    assert_eq!(file_stem("con"), "con_");
    assert_eq!(file_stem("COM1"), "COM1_");
    assert_eq!(file_stem("COMMIT"), "COMMIT");
}

#[test]
fn exports_never_replace_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exports");
    let a = write_export(&out, "Trip", "md", "one").unwrap();
    let b = write_export(&out, "Trip", "md", "two").unwrap();
    assert_eq!(a, out.join("Trip.md"));
    assert_eq!(b, out.join("Trip (2).md"));
    assert_eq!(std::fs::read_to_string(a).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(b).unwrap(), "two");
}
