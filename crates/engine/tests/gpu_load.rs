//! Loading onto a GPU through the `AutoEngine` the app uses: the placement is reported, the
//! model (GLM-5.x, and a dense LLaMA-family one) answers there, and a GPU that is not there or too small for the plan is refused
//! before the loaded model is let go; `Auto` follows the fit planner. (Its own test binary: it
//! sets `LOCALGLM_GPU_ADAPTER` and `LOCALGLM_MACHINE`, in one test so no two race.)

use futures::StreamExt;
use localglm_engine::auto::AutoEngine;
use localglm_engine::{
    ChatTurn, DeviceChoice, Engine, EngineEvent, GenerateRequest, LoadSpec, Role, SamplingParams,
};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../glm/tests/fixtures")
        .join(name)
}

async fn reply(engine: &AutoEngine) -> String {
    let req = GenerateRequest {
        messages: vec![ChatTurn::new(Role::User, "Hello")],
        sampling: SamplingParams {
            temperature: 0.0,
            max_tokens: 12,
            seed: Some(3),
            ..Default::default()
        },
        enable_thinking: None,
        reasoning_effort: None,
        clear_thinking: None,
        tools: None,
    };
    let mut g = engine.generate(req).await.unwrap();
    let mut text = String::new();
    while let Some(ev) = g.events.next().await {
        match ev {
            EngineEvent::Reasoning(t) | EngineEvent::Content(t) => text.push_str(&t),
            EngineEvent::Finished { error, .. } => {
                assert!(error.is_none(), "{error:?}");
                break;
            }
        }
    }
    text
}

fn on(device: DeviceChoice, cpu_moe: Option<u32>) -> LoadSpec {
    LoadSpec {
        device,
        cpu_moe,
        ..LoadSpec::new(fixture("tiny-q-q4_k.gguf"))
    }
}

#[tokio::test]
async fn gpu_loads_report_the_placement_and_a_missing_gpu_keeps_the_loaded_model() {
    let engine = AutoEngine::new();
    let cpu = engine.load(on(DeviceChoice::Cpu, None)).await.unwrap();
    assert_eq!(cpu.placement.as_deref(), Some("CPU"));
    let want = reply(&engine).await;

    if localglm_gpu::adapters().is_empty() {
        assert!(
            std::env::var("LOCALGLM_REQUIRE_GPU").map_or(true, |v| v != "1"),
            "LOCALGLM_REQUIRE_GPU=1 but no adapter"
        );
        eprintln!("SKIPPED (GPU part): no GPU adapter on this machine");
    } else {
        // The upload's progress reaches the load's listener, ending at its total.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let spec = LoadSpec {
            progress: localglm_engine::ProgressSink::new(move |p| log.lock().unwrap().push(p)),
            ..on(DeviceChoice::Gpu, Some(1))
        };
        let info = engine.load(spec).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let last = seen.last().expect("progress reported");
        assert_eq!(last.stage, "uploading weights to the GPU");
        assert!(last.total_bytes > 0.0 && last.done_bytes == last.total_bytes);
        let placement = info.placement.unwrap();
        assert!(placement.starts_with("GPU · "), "{placement}");
        assert!(
            placement.ends_with("experts of 1 layer in RAM"),
            "{placement}"
        );
        // (Not compared with the CPU's words: the CPU's default int8 activations and the
        // GPU's f32 ones may pick different tokens on random weights.)
        assert!(!reply(&engine).await.is_empty());
        // A dense LLaMA-family model goes to the same GPU backend.
        let dense = engine
            .load(LoadSpec {
                device: DeviceChoice::Gpu,
                ..LoadSpec::new(fixture("tiny-qwen2-f32.gguf"))
            })
            .await
            .unwrap();
        assert_eq!(dense.backend, "localglm-glm");
        let placement = dense.placement.unwrap();
        assert!(placement.starts_with("GPU · "), "{placement}");
        assert!(!placement.contains("in RAM"), "{placement}");
        assert!(!reply(&engine).await.is_empty());
        engine.load(on(DeviceChoice::Cpu, None)).await.unwrap();
    }

    // No such adapter: refused with the reason, and the CPU model is still there and answers.
    std::env::set_var("LOCALGLM_GPU_ADAPTER", "no-such-adapter-anywhere");
    let err = engine
        .load(on(DeviceChoice::Gpu, None))
        .await
        .unwrap_err()
        .to_string();
    std::env::remove_var("LOCALGLM_GPU_ADAPTER");
    assert!(err.contains("no usable GPU adapter"), "{err}");
    assert_eq!(
        engine.loaded().and_then(|m| m.placement).as_deref(),
        Some("CPU")
    );
    assert_eq!(reply(&engine).await, want);

    if localglm_gpu::adapters().is_empty() {
        // Auto without any adapter: the CPU, saying why.
        let p = engine.load(on(DeviceChoice::Auto, None)).await.unwrap();
        assert_eq!(
            p.placement.as_deref(),
            Some("CPU (Auto: no hardware GPU adapter)")
        );
        return;
    }
    // A GPU too small for the plan (a PC with 10 MB of VRAM stands in for this machine, as in
    // the app's fit check): refused with the planner's numbers, automatic or forced placement
    // alike, and the loaded model stays.
    std::env::set_var(
        "LOCALGLM_MACHINE",
        r#"{"id":"pc","ram_gib":64,"vram_gib":0.01,"unified":false,"gpu_limit_gib":null}"#,
    );
    for cpu_moe in [None, Some(2)] {
        let err = engine
            .load(on(DeviceChoice::Gpu, cpu_moe))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit this GPU"), "{err}");
        assert_eq!(
            engine.loaded().and_then(|m| m.placement).as_deref(),
            Some("CPU")
        );
    }
    std::env::remove_var("LOCALGLM_MACHINE");
    assert_eq!(reply(&engine).await, want);

    auto_follows_the_planner(&engine).await;
}

/// `Auto`: the GPU when an adapter is usable and the planner places the model there, else the
/// CPU with the reason in the placement.
async fn auto_follows_the_planner(engine: &AutoEngine) {
    let pc = |vram: f64| {
        format!(
            r#"{{"id":"pc","ram_gib":64,"vram_gib":{vram},"unified":false,"gpu_limit_gib":null}}"#
        )
    };
    let auto = |cpu_moe| on(DeviceChoice::Auto, cpu_moe);
    let placement = |info: localglm_engine::ModelInfo| info.placement.unwrap_or_default();

    // A software adapter (lavapipe) is not chosen automatically.
    let hardware = localglm_gpu::adapters().into_iter().find(|a| !a.software);
    if hardware.is_none() {
        let p = placement(engine.load(auto(None)).await.unwrap());
        assert_eq!(p, "CPU (Auto: no hardware GPU adapter)");
    }

    // The first adapter, named (so a software one counts), on a machine with 8 GiB of VRAM:
    // the whole model on the GPU; with the expert slider at 1, one layer's experts in RAM.
    let first = &localglm_gpu::adapters()[0];
    std::env::set_var("LOCALGLM_GPU_ADAPTER", &first.name);
    std::env::set_var("LOCALGLM_MACHINE", pc(8.0));
    let p = placement(engine.load(auto(None)).await.unwrap());
    assert_eq!(p, format!("GPU · {} · {}", first.backend, first.name));
    assert!(!reply(engine).await.is_empty());
    let p = placement(engine.load(auto(Some(1))).await.unwrap());
    assert!(p.ends_with(", experts of 1 layer in RAM"), "{p}");

    // 10 MB of VRAM: the planner keeps the model in RAM, and so does Auto.
    std::env::set_var("LOCALGLM_MACHINE", pc(0.01));
    let p = placement(engine.load(auto(None)).await.unwrap());
    assert_eq!(
        p,
        format!("CPU (Auto: the model does not fit {})", first.name)
    );

    // The GPU's memory unknown (this machine as probed: no NVML, no unified memory).
    std::env::remove_var("LOCALGLM_MACHINE");
    let this = localglm_protocol::MachineSpec {
        id: "this".into(),
        ram_gib: 0.0,
        vram_gib: None,
        unified: false,
        gpu_limit_gib: None,
    };
    if localglm_planner::gpu_budget(&localglm_planner::view::hardware(&this)).is_none() {
        let p = placement(engine.load(auto(None)).await.unwrap());
        assert!(p.starts_with("CPU (Auto: the memory of "), "{p}");
    }
    std::env::remove_var("LOCALGLM_GPU_ADAPTER");
}
