use super::presets::*;
use localglm_protocol::{ErrorKind, ModelInfo, SamplingPreset, SendAction, SendRequest, Settings};

fn model(thinking: bool, efforts: &[&str], ctx: Option<u32>) -> ModelInfo {
    ModelInfo {
        name: "m".into(),
        path: "/m.gguf".into(),
        size_bytes: 0.0,
        backend: "scripted".into(),
        architecture: None,
        context_length: ctx,
        quant: None,
        supports_thinking: thinking,
        effort_levels: efforts.iter().map(|s| s.to_string()).collect(),
        supports_tools: false,
        placement: None,
        prompt_cache_bytes: None,
        runtimes: Vec::new(),
    }
}

fn request(preset: Option<&str>) -> SendRequest {
    SendRequest {
        conversation_id: "c".into(),
        action: SendAction::Regenerate,
        preset_id: preset.map(str::to_owned),
        sampling: None,
        enable_thinking: None,
        reasoning_effort: None,
    }
}

fn user(name: &str) -> SamplingPreset {
    SamplingPreset {
        id: String::new(),
        name: name.into(),
        ..localglm_protocol::builtin_preset("general").unwrap()
    }
}

#[test]
fn resolve_takes_the_preset_then_per_message_overrides() {
    let s = Settings::default();
    let glm = model(true, &["high", "max"], Some(202_752));
    let (w, _) = resolve(&s, &request(Some("swe-bench-pro")), &glm).unwrap();
    assert_eq!(w.preset_name.as_deref(), Some("SWE-Bench Pro"));
    assert_eq!((w.sampling.temperature, w.sampling.top_p), (1.0, 1.0));
    assert_eq!(w.sampling.max_tokens, 131_072);
    assert_eq!(w.enable_thinking, Some(true));
    assert_eq!(w.reasoning_effort, None);

    let mut r = request(Some("general"));
    r.enable_thinking = Some(true);
    r.reasoning_effort = Some("max".into());
    let (w, _) = resolve(&s, &r, &glm).unwrap();
    assert_eq!(w.sampling.top_p, 0.95);
    assert_eq!(w.reasoning_effort.as_deref(), Some("max"));
    // Thinking off sends no effort; an effort the template does not know is dropped.
    r.enable_thinking = Some(false);
    assert_eq!(resolve(&s, &r, &glm).unwrap().0.reasoning_effort, None);
    r.enable_thinking = Some(true);
    r.reasoning_effort = Some("low".into());
    assert_eq!(resolve(&s, &r, &glm).unwrap().0.reasoning_effort, None);

    // A model without a thinking switch gets none; output is capped to the context.
    let small = model(false, &[], Some(8192));
    let (w, _) = resolve(&s, &request(Some("general")), &small).unwrap();
    assert_eq!(w.enable_thinking, None);
    assert_eq!(w.sampling.max_tokens, 8192);
    // No preset: the saved settings.
    let (w, sys) = resolve(&s, &request(None), &small).unwrap();
    assert_eq!(w.preset_id, None);
    assert_eq!(w.sampling, s.sampling);
    assert_eq!(sys, "");
    assert_eq!(
        resolve(&s, &request(Some("gone")), &small)
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
}

#[test]
fn a_preset_system_prompt_replaces_the_saved_one() {
    let mut s = Settings {
        system_prompt: "saved".into(),
        ..Settings::default()
    };
    let p = save(
        &mut s,
        SamplingPreset {
            system_prompt: Some("from preset".into()),
            ..user("Terse")
        },
    )
    .unwrap();
    let m = model(false, &[], None);
    assert_eq!(
        resolve(&s, &request(Some(&p.id)), &m).unwrap().1,
        "from preset"
    );
    assert_eq!(
        resolve(&s, &request(Some("general")), &m).unwrap().1,
        "saved"
    );
}

#[test]
fn names_and_ids_stay_unique_and_builtins_stay_put() {
    let mut s = Settings::default();
    let a = save(&mut s, user("Fast")).unwrap();
    let b = save(&mut s, user("fast")).unwrap();
    assert_eq!((a.id.as_str(), b.name.as_str()), ("user-fast", "fast (2)"));
    assert_ne!(a.id, b.id);
    // Saving under a built-in's id makes a new preset; the built-in is unchanged.
    let mut g = localglm_protocol::builtin_preset("general").unwrap();
    g.sampling.temperature = 0.2;
    let g2 = save(&mut s, g).unwrap();
    assert_eq!(g2.name, "General (2)");
    assert_eq!(find(&s, "general").unwrap().sampling.temperature, 1.0);
    assert_eq!(
        save(&mut s, user("  ")).unwrap_err().kind,
        ErrorKind::InvalidRequest
    );
    s.default_preset = a.id.clone();
    delete(&mut s, &a.id).unwrap();
    assert_eq!(s.default_preset, "general");
    assert_eq!(delete(&mut s, &a.id).unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(
        delete(&mut s, "swe-bench-pro").unwrap_err().kind,
        ErrorKind::InvalidRequest
    );
}

#[test]
fn import_is_all_or_nothing_and_accepts_bare_presets() {
    let mut s = Settings::default();
    save(&mut s, user("Mine")).unwrap();
    let file = export(&s);
    let mut other = Settings::default();
    assert_eq!(import(&mut other, &file).unwrap()[0].name, "Mine");
    // One valid and one invalid preset: nothing is added.
    let mut bad = user("Bad");
    bad.sampling.temperature = 9.0;
    let two = serde_json::to_string(&vec![user("Good"), bad]).unwrap();
    let before = other.clone();
    assert_eq!(
        import(&mut other, &two).unwrap_err().kind,
        ErrorKind::InvalidRequest
    );
    assert_eq!(other, before);
    // A single preset object.
    let one = serde_json::to_string(&user("Solo")).unwrap();
    assert_eq!(import(&mut other, &one).unwrap()[0].id, "user-solo");
    for junk in ["", "[]", "{\"format\":\"x\",\"presets\":[]}", "42"] {
        assert!(import(&mut other, junk).is_err(), "{junk}");
    }
}
