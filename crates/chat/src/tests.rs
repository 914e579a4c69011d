use super::*;
use localglm_engine::scripted::{Script, ScriptedEngine};
use std::sync::Mutex as StdMutex;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) service: Arc<ChatService>,
}

pub(super) async fn fixture(
    script: impl Fn(&GenerateRequest) -> Script + Send + Sync + 'static,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ConversationStore::open(dir.path().join("c")).unwrap();
    let engine = Arc::new(ScriptedEngine::new(script));
    let service = Arc::new(ChatService::new(engine, store));
    service
        .load_model("/models/fake.gguf".into())
        .await
        .unwrap();
    Fixture { _dir: dir, service }
}

pub(super) fn fast(r: &GenerateRequest) -> Script {
    Script {
        token_delay: Duration::from_millis(1),
        ..Script::echo(r)
    }
}

type Events = Arc<StdMutex<Vec<GenerationEvent>>>;

pub(super) fn recorder() -> (Events, EventSink) {
    let events: Events = Arc::default();
    let e2 = events.clone();
    (events, Arc::new(move |ev| e2.lock().unwrap().push(ev)))
}

pub(super) async fn wait_end(events: &Events) -> Vec<GenerationEvent> {
    for _ in 0..2000 {
        {
            let evs = events.lock().unwrap();
            if evs.iter().any(|e| {
                matches!(
                    e,
                    GenerationEvent::Done { .. } | GenerationEvent::Error { .. }
                )
            }) {
                return evs.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("generation did not end");
}

pub(super) fn new(conv: &str, text: &str) -> SendRequest {
    SendRequest {
        conversation_id: conv.into(),
        action: SendAction::New { text: text.into() },
        preset_id: None,
        sampling: None,
        enable_thinking: None,
        reasoning_effort: None,
    }
}

fn joined(evs: &[GenerationEvent]) -> (String, String) {
    let (mut r, mut c) = (String::new(), String::new());
    for e in evs {
        match e {
            GenerationEvent::Reasoning { delta } => r.push_str(delta),
            GenerationEvent::Content { delta, .. } => c.push_str(delta),
            _ => {}
        }
    }
    (r, c)
}

#[tokio::test]
async fn new_message_streams_in_order_and_is_saved() {
    let f = fixture(fast).await;
    let conv = f.service.create(None).unwrap();
    let (events, sink) = recorder();
    let handle = f
        .service
        .send(
            new(&conv.id, "What is the capital of France?"),
            &Settings::default(),
            sink,
        )
        .await
        .unwrap();
    assert_eq!(
        handle.user_message.message.content,
        "What is the capital of France?"
    );
    let evs = wait_end(&events).await;
    assert!(matches!(evs[0], GenerationEvent::Started { .. }));
    let (r, c) = joined(&evs);
    assert_eq!(r, "The user wrote 30 characters.");
    assert!(c.starts_with("You said: **What is the capital of France?**"));
    let GenerationEvent::Done {
        message,
        finish_reason,
    } = evs.last().unwrap()
    else {
        panic!("last event {:?}", evs.last())
    };
    assert_eq!(*finish_reason, FinishReason::Stop);
    assert_eq!(message.message.content, c);
    assert_eq!(message.message.reasoning.as_deref(), Some(r.as_str()));
    // The reasoning duration is measured and saved with the message.
    let ms = message.message.reasoning_ms.expect("reasoning duration");
    assert!((0.0..60_000.0).contains(&ms), "{ms}");
    assert!(message
        .html
        .contains("<strong>What is the capital of France?</strong>"));
    // The HTML streamed (appended blocks, then the last live block) is the saved message's,
    // and finished blocks were sent once, not the whole answer at each flush.
    let (mut appended, mut live, mut sent) = (String::new(), String::new(), 0);
    for e in &evs {
        if let GenerationEvent::Content {
            append_html,
            live_html,
            reset_html,
            ..
        } = e
        {
            if *reset_html {
                appended.clear();
            }
            appended.push_str(append_html);
            live.clone_from(live_html);
            sent += append_html.len() + live_html.len();
        }
    }
    assert_eq!(appended + &live, message.html);
    assert!(
        sent < 3 * message.html.len(),
        "{sent} bytes of HTML sent for {}",
        message.html.len()
    );

    let stored = f.service.get(&conv.id).unwrap();
    assert_eq!(stored.title, "What is the capital of France?");
    assert_eq!(stored.messages.len(), 2);
    assert_eq!(stored.messages[1].message.id, handle.assistant_message_id);
    assert!(
        stored.messages[1]
            .message
            .stats
            .as_ref()
            .unwrap()
            .generated_tokens
            > 0
    );
    assert!(!f.service.is_generating());
}

#[tokio::test]
async fn deltas_are_coalesced() {
    let f = fixture(|r| Script {
        content: Script::tokens(&"tok ".repeat(300)),
        token_delay: Duration::from_micros(200),
        ..Script::echo(r)
    })
    .await;
    let conv = f.service.create(None).unwrap();
    let (events, sink) = recorder();
    f.service
        .send(new(&conv.id, "x"), &Settings::default(), sink)
        .await
        .unwrap();
    let evs = wait_end(&events).await;
    let n_content = evs
        .iter()
        .filter(|e| matches!(e, GenerationEvent::Content { .. }))
        .count();
    assert!(
        n_content < 150,
        "300 tokens arrived in {n_content} content events"
    );
    assert_eq!(joined(&evs).1, "tok ".repeat(300));
}

#[tokio::test]
async fn stop_saves_the_partial_reply_as_cancelled() {
    let f = fixture(Script::echo).await;
    let conv = f.service.create(None).unwrap();
    let (events, sink) = recorder();
    let h = f
        .service
        .send(
            new(&conv.id, "tell me something long"),
            &Settings::default(),
            sink,
        )
        .await
        .unwrap();
    // A second send in the same conversation is refused while it runs.
    let (_e2, sink2) = recorder();
    let err = f
        .service
        .send(new(&conv.id, "again"), &Settings::default(), sink2)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(f.service.stop(&h.generation_id));
    let evs = wait_end(&events).await;
    let GenerationEvent::Done {
        message,
        finish_reason,
    } = evs.last().unwrap()
    else {
        panic!()
    };
    assert_eq!(*finish_reason, FinishReason::Cancelled);
    assert!(!message.message.content.is_empty());
    assert!(!message.message.content.contains("word399"));
    assert!(!f.service.stop(&h.generation_id), "no longer running");
    let stored = f.service.get(&conv.id).unwrap();
    assert_eq!(
        stored.messages[1].message.finish_reason,
        Some(FinishReason::Cancelled)
    );
}

fn action(conv: &str, action: SendAction) -> SendRequest {
    SendRequest {
        action,
        ..new(conv, "")
    }
}

async fn run(f: &Fixture, request: SendRequest) -> GenerationHandle {
    let (events, sink) = recorder();
    let handle = f
        .service
        .send(request, &Settings::default(), sink)
        .await
        .unwrap();
    wait_end(&events).await;
    handle
}

fn texts(view: &ConversationView) -> Vec<String> {
    view.messages
        .iter()
        .map(|m| m.message.content.clone())
        .collect()
}

#[tokio::test]
async fn regenerate_and_edit_keep_earlier_versions_as_branches() {
    let f = fixture(fast).await;
    let conv = f.service.create(None).unwrap();
    run(&f, new(&conv.id, "first")).await;
    run(&f, new(&conv.id, "second")).await;
    let before = f.service.get(&conv.id).unwrap();
    assert_eq!(before.messages.len(), 4);
    assert!(before.messages.iter().all(|m| m.versions.len() == 1));
    let old_reply = before.messages[3].message.id.clone();

    // Regenerate: a second version of the last reply; the model saw the branch without it.
    let h = run(&f, action(&conv.id, SendAction::Regenerate)).await;
    assert_eq!(h.user_message.message.content, "second");
    let view = f.service.get(&conv.id).unwrap();
    assert_eq!(view.messages.len(), 4);
    assert_eq!(view.messages[3].message.id, h.assistant_message_id);
    assert_eq!(
        view.messages[3].versions,
        vec![old_reply.clone(), h.assistant_message_id.clone()]
    );
    assert_eq!(f.service.list().unwrap()[0].message_count, 4);

    // Edit the first message: a new first message, its own answer; the old branch is kept.
    let first_id = view.messages[0].message.id.clone();
    let h = run(
        &f,
        action(
            &conv.id,
            SendAction::Edit {
                message_id: first_id.clone(),
                text: "edited".into(),
            },
        ),
    )
    .await;
    assert_ne!(h.user_message.message.id, first_id);
    assert_eq!(
        h.user_message.versions,
        vec![first_id.clone(), h.user_message.message.id.clone()]
    );
    let edited = f.service.get(&conv.id).unwrap();
    assert_eq!(edited.messages.len(), 2);
    assert_eq!(edited.messages[0].message.content, "edited");
    assert!(edited.messages[1].message.content.contains("edited"));
    assert_eq!(
        edited.title, "edited",
        "an automatic title follows the edit"
    );

    // Back to the first version: the whole branch below it as it was left (the regenerated
    // reply), and the model sees that branch next.
    let back = f.service.select_branch(&conv.id, &first_id).unwrap();
    assert_eq!(back.messages.len(), 4);
    assert_eq!(back.messages[0].message.content, "first");
    assert_eq!(back.messages[3].versions.len(), 2);
    assert_eq!(
        back.messages[3].message.id, back.messages[3].versions[1],
        "the version shown last below is shown"
    );
    assert_eq!(back, f.service.get(&conv.id).unwrap(), "kept on disk");
    // The older reply of the second message, then a new message continues that branch.
    let older = f.service.select_branch(&conv.id, &old_reply).unwrap();
    assert_eq!(older.messages[3].message.id, old_reply);
    run(&f, new(&conv.id, "third")).await;
    let grown = f.service.get(&conv.id).unwrap();
    assert_eq!(grown.messages.len(), 6);
    assert_eq!(grown.messages[3].message.id, old_reply);
    assert_eq!(grown.messages[4].message.content, "third");
    // To the edited branch and back: the older reply and what followed it, as left.
    f.service
        .select_branch(&conv.id, &h.user_message.message.id)
        .unwrap();
    let left = f.service.select_branch(&conv.id, &first_id).unwrap();
    assert_eq!(left, grown);

    assert!(f.service.select_branch(&conv.id, "nosuchmessage").is_err());
}

#[tokio::test]
async fn branches_cannot_be_switched_while_a_reply_is_written() {
    let f = fixture(|r| Script {
        token_delay: Duration::from_millis(20),
        ..Script::echo(r)
    })
    .await;
    let conv = f.service.create(None).unwrap();
    let (events, sink) = recorder();
    let h = f
        .service
        .send(new(&conv.id, "a long question"), &Settings::default(), sink)
        .await
        .unwrap();
    let refused = f
        .service
        .select_branch(&conv.id, &h.user_message.message.id)
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidRequest);
    wait_end(&events).await;
}

#[tokio::test]
async fn format_1_files_are_read_as_one_branch() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConversationStore::open(dir.path().join("c")).unwrap();
    // A file as the format-1 app wrote it: no parent links, no current message.
    let v1 = serde_json::json!({
        "version": 1, "id": "abc", "title": "Old", "created_at_ms": 1.0, "updated_at_ms": 2.0,
        "messages": [
            {"id": "u1", "role": "user", "content": "hi", "created_at_ms": 1.0},
            {"id": "a1", "role": "assistant", "content": "hello", "created_at_ms": 1.5},
            {"id": "u2", "role": "user", "content": "more", "created_at_ms": 1.8}
        ]
    });
    let path = dir.path().join("c").join("abc.json");
    std::fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
    let service = Arc::new(ChatService::new(Arc::new(ScriptedEngine::new(fast)), store));
    service
        .load_model("/models/fake.gguf".into())
        .await
        .unwrap();
    let view = service.get("abc").unwrap();
    assert_eq!(texts(&view), ["hi", "hello", "more"]);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        serde_json::to_vec(&v1).unwrap(),
        "reading does not rewrite the file"
    );
    // Answering it writes format 2, linked.
    let f = Fixture { _dir: dir, service };
    run(&f, action("abc", SendAction::Regenerate)).await;
    let stored: Conversation = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored.version, localglm_conversations::FORMAT_VERSION);
    assert_eq!(stored.messages[1].parent_id.as_deref(), Some("u1"));
    assert_eq!(stored.messages[3].parent_id.as_deref(), Some("u2"));
    assert_eq!(stored.current_id.as_ref(), Some(&stored.messages[3].id));
}

#[tokio::test]
async fn failures_are_reported_with_the_partial_message() {
    let f = fixture(|r| Script {
        fail_with: Some("out of memory".into()),
        token_delay: Duration::from_millis(1),
        ..Script::echo(r)
    })
    .await;
    let conv = f.service.create(None).unwrap();
    let (events, sink) = recorder();
    f.service
        .send(new(&conv.id, "hi"), &Settings::default(), sink)
        .await
        .unwrap();
    let evs = wait_end(&events).await;
    let GenerationEvent::Error { error, message } = evs.last().unwrap() else {
        panic!()
    };
    assert_eq!(error.kind, ErrorKind::Generation);
    assert_eq!(error.detail.as_deref(), Some("out of memory"));
    assert!(message.as_ref().unwrap().message.content.contains("hi"));
    assert_eq!(f.service.get(&conv.id).unwrap().messages.len(), 2);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_saved() {
    let f = fixture(fast).await;
    let conv = f.service.create(None).unwrap();
    let (_e, sink) = recorder();
    let err = f
        .service
        .send(new(&conv.id, "   "), &Settings::default(), sink.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    let regen = SendRequest {
        conversation_id: conv.id.clone(),
        action: SendAction::Regenerate,
        preset_id: None,
        sampling: None,
        enable_thinking: None,
        reasoning_effort: None,
    };
    assert_eq!(
        f.service
            .send(regen, &Settings::default(), sink.clone())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        f.service
            .send(new("nope", "x"), &Settings::default(), sink.clone())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert!(f.service.get(&conv.id).unwrap().messages.is_empty());

    f.service.engine().unload().await;
    let err = f
        .service
        .send(new(&conv.id, "x"), &Settings::default(), sink)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoModel);
}

#[tokio::test]
async fn load_failures_set_a_failed_status() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(ScriptedEngine::default());
    *engine.fail_load.lock().unwrap() = Some(EngineError::ModelMissing("/x.gguf".into()));
    let service = ChatService::new(engine, ConversationStore::open(dir.path()).unwrap());
    let seen: Arc<StdMutex<Vec<ModelStatus>>> = Arc::default();
    let s2 = seen.clone();
    service.on_status(Arc::new(move |s| s2.lock().unwrap().push(s.clone())));
    let err = service.load_model("/x.gguf".into()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ModelMissing);
    let seen = seen.lock().unwrap();
    assert!(matches!(seen[0], ModelStatus::Loading { .. }));
    assert!(matches!(seen[1], ModelStatus::Failed { .. }));
    assert_eq!(service.model_status(), seen[1]);
}

#[test]
fn user_text_is_escaped_not_rendered() {
    let v = render(new_message(Role::User, "<b>hi</b>\n**x**"));
    assert_eq!(v.html, "<p>&lt;b&gt;hi&lt;/b&gt;<br>**x**</p>");
}

#[tokio::test]
async fn thinking_controls_are_remembered_per_conversation() {
    let f = fixture(fast).await;
    let conv = f.service.create(None).unwrap();
    let other = f.service.create(None).unwrap();
    assert_eq!(f.service.get(&conv.id).unwrap().thinking, None);
    let (events, sink) = recorder();
    let request = SendRequest {
        enable_thinking: Some(false),
        reasoning_effort: Some("high".into()),
        ..new(&conv.id, "hi")
    };
    f.service
        .send(request, &Settings::default(), sink)
        .await
        .unwrap();
    wait_end(&events).await;
    assert_eq!(
        f.service.get(&conv.id).unwrap().thinking,
        Some(ThinkingChoice {
            enabled: false,
            effort: Some("high".into())
        })
    );
    assert_eq!(f.service.get(&other.id).unwrap().thinking, None);
}

#[tokio::test]
async fn past_reasoning_goes_back_to_the_engine_and_clear_thinking_follows_the_setting() {
    let seen: Arc<StdMutex<Vec<GenerateRequest>>> = Arc::default();
    let log = seen.clone();
    let f = fixture(move |r| {
        if r.messages[0].content != localglm_engine::TITLE_INSTRUCTION {
            log.lock().unwrap().push(r.clone());
        }
        fast(r)
    })
    .await;
    let conv = f.service.create(None).unwrap();
    for (text, clear) in [("first", false), ("second", false), ("third", true)] {
        let (events, sink) = recorder();
        let settings = Settings {
            clear_thinking: clear,
            ..Settings::default()
        };
        f.service
            .send(new(&conv.id, text), &settings, sink)
            .await
            .unwrap();
        wait_end(&events).await;
    }
    let seen = seen.lock().unwrap();
    // The echo script reasons, so the first reply's reasoning is in the second request.
    let second = &seen[1];
    assert_eq!(second.messages[1].role, Role::Assistant);
    assert!(second.messages[1].reasoning.is_some());
    assert_eq!(second.clear_thinking, None);
    assert_eq!(seen[2].clear_thinking, Some(true));
}

#[tokio::test]
async fn the_reply_being_written_is_kept_on_disk_until_it_is_saved() {
    let f = fixture(|r| Script {
        content: Script::tokens(&"word ".repeat(400)),
        token_delay: Duration::from_millis(5),
        ..Script::echo(r)
    })
    .await;
    let conv = f.service.create(None).unwrap();
    let partial = f
        ._dir
        .path()
        .join("c")
        .join(format!("{}.partial.json", conv.id));
    let (events, sink) = recorder();
    let handle = f
        .service
        .send(new(&conv.id, "x"), &Settings::default(), sink)
        .await
        .unwrap();
    tokio::time::sleep(PARTIAL_INTERVAL + Duration::from_millis(400)).await;
    let kept: Message = serde_json::from_slice(&std::fs::read(&partial).unwrap()).unwrap();
    assert_eq!(kept.id, handle.assistant_message_id);
    assert!(kept.content.starts_with("word word"), "{}", kept.content);
    assert!(kept.finish_reason.is_none());
    wait_end(&events).await;
    assert!(
        !partial.exists(),
        "the saved reply replaces its partial copy"
    );
}

#[tokio::test]
async fn a_reply_cut_off_by_a_killed_app_is_shown_interrupted_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConversationStore::open(dir.path().join("c")).unwrap();
    let mut conv = store.create(None).unwrap();
    tree::push(&mut conv, new_message(Role::User, "tell me"));
    store.save(&conv).unwrap();
    store
        .save_partial(&conv.id, &new_message(Role::Assistant, "Half of"))
        .unwrap();
    // The next start: the service recovers it before anything else.
    let service = ChatService::new(Arc::new(ScriptedEngine::new(fast)), store);
    let view = service.get(&conv.id).unwrap();
    let last = &view.messages.last().unwrap().message;
    assert_eq!(last.content, "Half of");
    assert_eq!(last.finish_reason, Some(FinishReason::Interrupted));
}

#[tokio::test]
async fn a_message_is_measured_alone_and_in_the_prompt_it_would_be_sent_in() {
    let f = fixture(fast).await;
    let settings = Settings::default();
    let conv = f.service.create(None).unwrap();
    run(&f, new(&conv.id, "one two three")).await;
    let ask = |conversation_id: Option<String>| MeasureRequest {
        conversation_id,
        text: "four five six seven".into(),
        preset_id: None,
        enable_thinking: None,
        reasoning_effort: None,
    };
    let in_chat = f
        .service
        .measure(&ask(Some(conv.id.clone())), &settings)
        .await
        .unwrap();
    let fresh = f.service.measure(&ask(None), &settings).await.unwrap();
    assert_eq!(in_chat.message_tokens, fresh.message_tokens);
    assert_eq!(
        fresh.prompt_tokens, fresh.message_tokens,
        "nothing else to send"
    );
    assert!(
        in_chat.prompt_tokens > fresh.prompt_tokens,
        "the conversation so far counts too: {in_chat:?} vs {fresh:?}"
    );
    assert_eq!(
        in_chat.context_length,
        f.service.engine().loaded().unwrap().context_length,
        "the model's context"
    );
    // Nothing was saved by measuring.
    assert_eq!(f.service.get(&conv.id).unwrap().messages.len(), 2);
    let missing = f
        .service
        .measure(&ask(Some("nosuch".into())), &settings)
        .await;
    assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);
}

#[test]
fn model_titles_are_cleaned() {
    assert_eq!(
        clean_title("Title: \"Paris travel tips.\"\nmore").as_deref(),
        Some("Paris travel tips")
    );
    assert_eq!(
        clean_title("**Rust   lifetimes**").as_deref(),
        Some("Rust lifetimes")
    );
    assert_eq!(clean_title("# “Quoted”!").as_deref(), Some("Quoted"));
    assert_eq!(clean_title("  \n\"\"\n"), None);
    assert_eq!(
        clean_title(&"word ".repeat(30)).unwrap().chars().count(),
        49
    );
}

pub(super) async fn wait_title(f: &Fixture, id: &str, title: &str) {
    for _ in 0..400 {
        if f.service.get(id).unwrap().title == title {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "title never became {title:?}: {:?}",
        f.service.get(id).unwrap().title
    );
}

#[tokio::test]
async fn the_model_titles_a_chat_after_its_first_reply_unless_told_not_to() {
    let f = fixture(|r| {
        if r.messages[0].content == localglm_engine::TITLE_INSTRUCTION {
            assert_eq!(r.enable_thinking, Some(false));
            assert!(r.messages[1]
                .content
                .contains("What should I see in Paris?"));
            return Script {
                content: Script::tokens("Title: **Paris sights**."),
                ..fast(r)
            };
        }
        fast(r)
    })
    .await;
    let told: Arc<StdMutex<Vec<ConversationSummary>>> = Arc::default();
    let t2 = told.clone();
    f.service
        .on_conversation(Arc::new(move |s| t2.lock().unwrap().push(s.clone())));
    let conv = f.service.create(None).unwrap();
    run(&f, new(&conv.id, "What should I see in Paris?")).await;
    wait_title(&f, &conv.id, "Paris sights").await;
    assert_eq!(told.lock().unwrap()[0].title, "Paris sights");
    // Only the first exchange is titled.
    run(&f, new(&conv.id, "And in Lyon?")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(told.lock().unwrap().len(), 1);

    // A title the user chose is kept; the setting off keeps the first words.
    let mine = f.service.create(Some("Mine".into())).unwrap();
    run(&f, new(&mine.id, "What should I see in Paris?")).await;
    let off = f.service.create(None).unwrap();
    let settings = Settings {
        generate_titles: false,
        ..Settings::default()
    };
    let (events, sink) = recorder();
    f.service
        .send(new(&off.id, "What should I see in Paris?"), &settings, sink)
        .await
        .unwrap();
    wait_end(&events).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.service.get(&mine.id).unwrap().title, "Mine");
    assert_eq!(
        f.service.get(&off.id).unwrap().title,
        "What should I see in Paris?"
    );
    assert_eq!(told.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_regenerate_that_yields_nothing_leaves_the_old_reply_shown() {
    let f = fixture(|r| Script {
        token_delay: Duration::from_millis(200),
        ..Script::echo(r)
    })
    .await;
    let conv = f.service.create(None).unwrap();
    run(&f, new(&conv.id, "first")).await;
    let old = f.service.get(&conv.id).unwrap().messages[1]
        .message
        .id
        .clone();
    let (events, sink) = recorder();
    let h = f
        .service
        .send(
            action(&conv.id, SendAction::Regenerate),
            &Settings::default(),
            sink,
        )
        .await
        .unwrap();
    // Stopped before its first token: nothing is saved, the old reply is still the one shown.
    assert!(f.service.stop(&h.generation_id));
    wait_end(&events).await;
    let view = f.service.get(&conv.id).unwrap();
    assert_eq!(view.messages.len(), 2);
    assert_eq!(view.messages[1].message.id, old);
    assert_eq!(view.messages[1].versions, vec![old.clone()]);
    // And the next message follows it, not beside it.
    run(&f, new(&conv.id, "second")).await;
    let view = f.service.get(&conv.id).unwrap();
    assert_eq!(view.messages.len(), 4);
    assert_eq!(view.messages[1].message.id, old);
    assert!(view.messages.iter().all(|m| m.versions.len() == 1));
}
