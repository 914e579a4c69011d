//! The planner on GLM-5.2's real tensor list (1,809 tensors, shapes from the spec §C.4) with the
//! UD-Q2_K_XL type mix (§F: routed gate/up IQ2_XS, down IQ3_XXS; attention, indexer, dense and
//! shared experts Q8_0; norms, router and bias F32), on the machines users have. Every expected
//! number is worked out by hand in the comments. Most tests plan the trunk alone (drafting off);
//! `the_mtp_block_is_counted_unless_drafting_is_off` plans the runtime's default, which loads
//! the MTP block too.

use localglm_hardware::Hardware;
use localglm_planner::{plan, KvType, ModelSpec, Placement, Verdict};
use localglm_testkit::glm52;

/// The spec as the runtime's default loads it: the MTP block counted.
fn with_mtp() -> ModelSpec {
    let ts = glm52::tensor_infos(glm52::UD_Q2_K_XL);
    assert_eq!(ts.len(), 1809, "the tensor count of the real files");
    ModelSpec::from_header("GLM-5.2-UD-Q2_K_XL", &glm52::metadata(), &ts).unwrap()
}

/// The trunk alone (drafting off: the MTP block is not loaded).
fn glm52_ud_q2_k_xl() -> ModelSpec {
    ModelSpec {
        mtp: false,
        ..with_mtp()
    }
}

// Hand arithmetic (Q8_0 = 34 B / 32, IQ2_XS = 74 B / 256, IQ3_XXS = 98 B / 256):
// experts per MoE layer: gate, up 6144·2048·256 = 3,221,225,472 elems → 12,582,912 blocks × 74
//   = 931,135,488 B each; down × 98 = 1,233,125,376 B; layer 3,095,396,352 B; 75 layers
//   232,154,726,400 B.
// other (all but experts and token_embd, main 78 layers): per block attention 165,019,648 +
//   indexer 9,371,648 Q8_0 elems → 185,290,752 B, + 60,416 B F32 = 185,351,168 B; dense blocks
//   + 226,492,416 elems → +240,648,192 B; MoE blocks + shared 37,748,736 elems (40,108,032 B)
//   + router 6,291,456 B + bias 1,024 B; output 1,011,056,640 B + output_norm 24,576 B:
//   3·425,999,360 + 75·231,751,680 + 1,011,081,216 = 19,670,455,296 B.
// token_embd 1,011,056,640 B. Loaded: 252,836,238,336 B without the MTP block (layer 78).
// The MTP block: a MoE layer's experts (3,095,396,352 B) and 312,041,472 B else — attention and
//   indexer 185,351,168, shared expert 40,108,032, router 6,291,456, bias 1,024, eh_proj
//   6144·12288 Q8_0 = 80,216,064, enorm / hnorm / shared_head_norm 3·6144·4 = 73,728.
const EXPERT_LAYER: u64 = 3_095_396_352;
const OTHER: u64 = 19_670_455_296;
const EMBD: u64 = 1_011_056_640;
const LOADED: u64 = 252_836_238_336;
const MTP_OTHER: u64 = 312_041_472;
// KV per token: f16 (78·576 + 21·128)·2 = 95,232 B (spec §G.1); scratch = 2048·ctx + 206,140,416.
const KV_F16: u64 = 95_232;
const SCRATCH_BASE: u64 = 206_140_416;

fn kv(ctx: u64) -> u64 {
    ctx * KV_F16
}

fn scratch(ctx: u64) -> u64 {
    2048 * ctx + SCRATCH_BASE
}

#[test]
fn the_tensor_list_adds_up() {
    let m = glm52_ud_q2_k_xl();
    assert_eq!(m.moe_layers.len(), 75);
    assert_eq!(m.expert_bytes_per_layer(), vec![EXPERT_LAYER; 75]);
    assert_eq!(m.bytes_of(localglm_planner::Kind::Other), OTHER);
    assert_eq!(m.bytes_of(localglm_planner::Kind::TokenEmbd), EMBD);
    assert_eq!(m.loaded_bytes(), LOADED);
    assert_eq!((m.kv.attn, m.kv.indexer), (44_928, 2_688));
    assert_eq!(localglm_planner::kv_bytes(&m, 1, KvType::F16), 95_232);
    assert_eq!(localglm_planner::kv_bytes(&m, 1, KvType::Q8_0), 50_592);
}

#[test]
fn mac_256_default_metal_limit_moves_16_layers_of_experts_to_ram() {
    let m = glm52_ud_q2_k_xl();
    let mac = Hardware::simulated(256.0, None, Some(None));
    let p = plan(&mac, &m, 32_768, KvType::F16, Placement::Auto);
    // GPU budget 192 GiB = 206,158,430,208. All on the GPU would need
    // OTHER + 75 layers + KV 3,120,562,176 + scratch 273,249,280 = 255,218,993,152: too much.
    // Without experts: 23,064,266,752; room 183,094,163,456 = 59.15 layers → 59 on the GPU.
    assert_eq!(p.verdict, Verdict::GpuCpuExperts);
    assert_eq!(p.cpu_moe_layers, 16);
    let gpu_used = OTHER + kv(32_768) + scratch(32_768) + 59 * EXPERT_LAYER;
    assert_eq!(p.bytes.gpu_used, 205_692_651_520);
    assert_eq!(p.bytes.gpu_used, gpu_used);
    assert_eq!(p.bytes.weights_gpu, OTHER + 59 * EXPERT_LAYER);
    assert_eq!(p.bytes.weights_cpu, EMBD + 16 * EXPERT_LAYER);
    assert_eq!(p.bytes.kv, 3_120_562_176);
    assert_eq!(p.bytes.scratch, 273_249_280);
    // One memory: everything counts against 256 GiB less 5 % (13,743,895,347).
    assert_eq!(p.bytes.ram_used, LOADED + kv(32_768) + scratch(32_768));
    assert_eq!(p.bytes.ram_budget, 261_134_011_597);
    // The fix: wire 238 GiB (255,218,993,152 B rounded up) and it all goes on the GPU.
    let raise = p
        .fixes
        .iter()
        .find(|f| f.kind == "raise_gpu_limit")
        .unwrap();
    assert_eq!(raise.value, Some(238 * 1024));
    assert!(
        raise
            .text
            .contains("sudo sysctl iogpu.wired_limit_mb=243712"),
        "{}",
        raise.text
    );
}

#[test]
fn mac_256_raised_limit_runs_all_on_the_gpu_and_sweeps_context() {
    let m = glm52_ud_q2_k_xl();
    let mac = Hardware::simulated(256.0, None, Some(Some(240.0)));
    let at = |ctx: u64, kv_type| plan(&mac, &m, ctx, kv_type, Placement::Auto);
    let p = at(32_768, KvType::F16);
    assert_eq!(p.verdict, Verdict::Gpu);
    assert_eq!(p.cpu_moe_layers, 0);
    assert_eq!(p.bytes.gpu_used, 255_218_993_152);
    // Largest context all on the GPU: (240 GiB − (LOADED − EMBD) − 206,140,416) / 97,280 per
    // token = 5,666,715,648 / 97,280 = 58,251.
    assert_eq!(p.max_context, 58_251);
    assert_eq!(at(4_096, KvType::F16).verdict, Verdict::Gpu);
    // 64 K: all on the GPU needs 258,406,664,192 > 257,698,037,760; one layer in RAM fits.
    let p = at(65_536, KvType::F16);
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::GpuCpuExperts, 1));
    // 128 K: the one memory itself is too small (265,793,062,912 > 261,134,011,597), whatever the
    // placement; the largest context is 8,091,632,845 / 97,280 = 83,178; q8_0 KV would fit
    // (259,942,008,832).
    let p = at(131_072, KvType::F16);
    assert_eq!(p.verdict, Verdict::NoFit);
    assert_eq!(p.max_context, 83_178);
    let kinds: Vec<&str> = p.fixes.iter().map(|f| f.kind.as_str()).collect();
    assert!(
        kinds.contains(&"shorter_context") && kinds.contains(&"kv_q8_0"),
        "{kinds:?}"
    );
    let p = at(131_072, KvType::Q8_0);
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::GpuCpuExperts, 1));
    assert_eq!(p.bytes.kv, 131_072 * 50_592);
    // 1 M: 99.86 GB of f16 KV alone; does not fit even as q8_0.
    let p = at(1_048_576, KvType::F16);
    assert_eq!(p.verdict, Verdict::NoFit);
    assert_eq!(p.bytes.kv, 99_857_989_632);
    assert!(!p.fixes.iter().any(|f| f.kind == "kv_q8_0"));
}

#[test]
fn pc_with_a_24_gb_gpu_keeps_the_experts_in_ram() {
    let m = glm52_ud_q2_k_xl();
    let pc = Hardware::simulated(256.0, Some(24.0), None);
    let p = plan(&pc, &m, 32_768, KvType::F16, Placement::Auto);
    // GPU budget 24 GiB − 512 MiB = 25,232,932,864; without experts it holds 23,064,266,752,
    // leaving 2,168,666,112 < one layer: all 75 layers' experts in RAM.
    assert_eq!(p.verdict, Verdict::GpuCpuExperts);
    assert_eq!(p.cpu_moe_layers, 75);
    assert_eq!(p.bytes.gpu_budget, 25_232_932_864);
    assert_eq!(p.bytes.gpu_used, 23_064_266_752);
    assert_eq!(p.bytes.weights_cpu, EMBD + 75 * EXPERT_LAYER);
    assert_eq!(p.bytes.ram_used, 233_165_783_040);
    // Context limit on the GPU: (25,232,932,864 − OTHER − 206,140,416) / 97,280 = 55,061.
    assert_eq!(p.max_context, 55_061);
    // At 4 K the GPU has room for one layer's experts (4,957,878,272 free).
    let p = plan(&pc, &m, 4_096, KvType::F16, Placement::Auto);
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::GpuCpuExperts, 74));
    // Forcing too few layers to RAM does not fit, and the fix names the count that does.
    let p = plan(&pc, &m, 32_768, KvType::F16, Placement::CpuMoe(10));
    assert_eq!(p.verdict, Verdict::NoFit);
    let more = p
        .fixes
        .iter()
        .find(|f| f.kind == "more_experts_on_cpu")
        .unwrap();
    assert_eq!(more.value, Some(75));
    // CPU only also fits in 256 GiB: LOADED + KV + scratch = 256,230,049,792.
    let p = plan(&pc, &m, 32_768, KvType::F16, Placement::CpuOnly);
    assert_eq!(p.verdict, Verdict::Cpu);
    assert_eq!(p.bytes.ram_used, 256_230_049_792);
}

#[test]
fn mac_128_does_not_fit_and_says_what_would() {
    let m = glm52_ud_q2_k_xl();
    let mac = Hardware::simulated(128.0, None, Some(None));
    let p = plan(&mac, &m, 32_768, KvType::F16, Placement::Auto);
    assert_eq!(p.verdict, Verdict::NoFit);
    assert_eq!(p.max_context, 0);
    // Usable: 128 GiB − 5 % = 130,567,005,799; less KV and scratch at 32 K (3,393,811,456):
    // 127,173,194,343 B of weights — below even the 217 GB 1-bit quant.
    let q = p.fixes.iter().find(|f| f.kind == "smaller_quant").unwrap();
    assert_eq!(q.value, Some(127_173_194_343));
    assert!(q.text.contains("UD-IQ1_S"), "{}", q.text);
    assert!(p.summary.starts_with("Does not fit"), "{}", p.summary);
    // A 256 GiB PC without a GPU: RAM only.
    let p = plan(
        &Hardware::simulated(256.0, None, None),
        &m,
        32_768,
        KvType::F16,
        Placement::Auto,
    );
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::Cpu, 75));
}

#[test]
fn the_catalog_picker_badges_on_the_two_target_machines() {
    use localglm_planner::view::quant_catalog;
    use localglm_protocol::{FitRequest, MachineSpec};
    let req = |machine: MachineSpec| FitRequest {
        machine,
        context: 32_768,
        kv_type: "f16".into(),
        cpu_moe: None,
        mtp: None,
        family: None,
    };
    let verdict = |c: &localglm_protocol::QuantCatalog, label: &str| {
        c.rows
            .iter()
            .find(|r| r.label == label)
            .map(|r| r.plan.verdict.clone())
            .unwrap()
    };
    let mac = quant_catalog(&req(MachineSpec {
        id: "mac-256".into(),
        ram_gib: 256.0,
        vram_gib: None,
        unified: true,
        gpu_limit_gib: None,
    }))
    .unwrap();
    assert_eq!(mac.rows.len(), 16);
    // Unsloth: 1-bit and UD-IQ2_M "fit a 256 GB Mac"; 3-bit and up do not.
    assert_eq!(verdict(&mac, "UD-IQ1_S"), "gpu_cpu_experts");
    assert_eq!(verdict(&mac, "UD-IQ2_M"), "gpu_cpu_experts");
    assert_eq!(verdict(&mac, "UD-IQ3_XXS"), "no_fit");
    assert_eq!(verdict(&mac, "BF16"), "no_fit");
    assert!(mac.rows.iter().all(|r| r.plan.estimated));
    let pc = quant_catalog(&req(MachineSpec {
        id: "pc-24-256".into(),
        ram_gib: 256.0,
        vram_gib: Some(24.0),
        unified: false,
        gpu_limit_gib: None,
    }))
    .unwrap();
    // "1×24 GB GPU + 256 GB RAM with MoE offload" for UD-IQ2_M.
    assert_eq!(verdict(&pc, "UD-IQ2_M"), "gpu_cpu_experts");
    assert_eq!(verdict(&pc, "UD-Q4_K_M"), "no_fit");
}

/// The runtime loads the MTP block unless drafting is off, so by default the plan counts it:
/// its weights (its experts on the GPU only when every trunk layer's are, the runtime's rule),
/// and its own latent cache and indexer keys ((576 + 128)·2 = 1,408 B per token in f16).
#[test]
fn the_mtp_block_is_counted_unless_drafting_is_off() {
    let m = with_mtp();
    assert!(m.mtp);
    assert_eq!(m.loaded_bytes(), LOADED + MTP_OTHER + EXPERT_LAYER);
    assert_eq!(m.loaded_bytes(), 256_243_676_160);
    let kv = |ctx: u64| ctx * (KV_F16 + 1_408);
    assert_eq!(localglm_planner::kv_bytes(&m, 1, KvType::F16), 96_640);
    // q8_0: 48,320 values per token · 34 / 32.
    assert_eq!(localglm_planner::kv_bytes(&m, 1, KvType::Q8_0), 51_340);
    // The Mac with its limit raised to 240 GiB (257,698,037,760 B), which holds the trunk all
    // on the GPU at 32 K: with the block, all on the GPU needs OTHER + MTP_OTHER + 76 layers of
    // experts + KV 3,166,699,520 + scratch 273,249,280 = 258,672,568,320 — too much. One trunk
    // layer's experts in RAM sends the block's there too: 252,481,775,616 on the GPU.
    let mac = Hardware::simulated(256.0, None, Some(Some(240.0)));
    let p = plan(&mac, &m, 32_768, KvType::F16, Placement::Auto);
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::GpuCpuExperts, 1));
    assert_eq!(p.bytes.gpu_used, 252_481_775_616);
    assert_eq!(
        p.bytes.gpu_used,
        OTHER + MTP_OTHER + 74 * EXPERT_LAYER + kv(32_768) + scratch(32_768)
    );
    assert_eq!(p.bytes.weights_cpu, EMBD + 2 * EXPERT_LAYER);
    assert_eq!(p.model_bytes, m.loaded_bytes());
    let trunk = plan(
        &mac,
        &glm52_ud_q2_k_xl(),
        32_768,
        KvType::F16,
        Placement::Auto,
    );
    assert_eq!(trunk.verdict, Verdict::Gpu);
    // Everything on the GPU (the block's experts too) when the trunk's all fit there: at 4 K.
    let p = plan(&mac, &m, 4_096, KvType::F16, Placement::Auto);
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::Gpu, 0));
    assert_eq!(p.bytes.weights_gpu, OTHER + MTP_OTHER + 76 * EXPERT_LAYER);
    // The 24 GB PC: all 75 trunk layers' experts and the block's in RAM; the GPU holds
    // 23,422,445,568, and its context limit is (25,232,932,864 − OTHER − MTP_OTHER −
    // 206,140,416) / (96,640 + 2,048) = 51,113 tokens.
    let pc = Hardware::simulated(256.0, Some(24.0), None);
    let p = plan(&pc, &m, 32_768, KvType::F16, Placement::Auto);
    assert_eq!((p.verdict, p.cpu_moe_layers), (Verdict::GpuCpuExperts, 75));
    assert_eq!(p.bytes.gpu_used, 23_422_445_568);
    assert_eq!(p.bytes.weights_gpu, OTHER + MTP_OTHER);
    assert_eq!(p.bytes.weights_cpu, EMBD + 76 * EXPERT_LAYER);
    assert_eq!(p.max_context, 51_113);
}

/// A GLM-5.1 file: the same tensors, a 202,752-token context and no `indexer.types`, so every
/// layer keeps indexer keys (as the runtime and llama.cpp read it): f16 KV (78·576 + 78·128)·2
/// = 109,824 B per token (spec §G.1), against GLM-5.2's 95,232. The catalog plans it the same
/// way, and GLM-5.1's context caps the plan.
#[test]
fn a_glm51_header_counts_an_indexer_in_every_layer() {
    use localglm_gguf::Value;
    let meta: Vec<(String, Value)> = glm52::metadata()
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "glm-dsa.context_length" => (k, Value::U32(202_752)),
            _ => (k, v),
        })
        .collect();
    let ts = glm52::tensor_infos(glm52::UD_Q2_K_XL);
    let m = ModelSpec {
        mtp: false,
        ..ModelSpec::from_header("GLM-5.1-UD-Q2_K_XL", &meta, &ts).unwrap()
    };
    assert_eq!((m.kv.attn, m.kv.indexer), (44_928, 9_984));
    assert_eq!(m.context_max, 202_752);
    assert_eq!(localglm_planner::kv_bytes(&m, 1, KvType::F16), 109_824);
    assert_eq!(localglm_planner::kv_bytes(&m, 1, KvType::Q8_0), 58_344);
    // The key, where a file has it, wins over the context.
    let mut listed = meta.clone();
    listed.push((
        "glm-dsa.attention.indexer.types".into(),
        Value::Array(localglm_gguf::Array {
            elem_type: localglm_gguf::ValueType::Bool,
            items: (0..78).map(|l| Value::Bool(l % 2 == 0)).collect(),
        }),
    ));
    let m = ModelSpec::from_header("GLM-5.1-listed", &listed, &ts).unwrap();
    assert_eq!(m.kv.indexer, 39 * 128);

    use localglm_planner::view::{plan_quant, quant_catalog};
    use localglm_protocol::{FitRequest, MachineSpec};
    let req = |family: &str, context: u32| FitRequest {
        machine: MachineSpec {
            id: "mac-256".into(),
            ram_gib: 256.0,
            vram_gib: None,
            unified: true,
            gpu_limit_gib: None,
        },
        context,
        kv_type: "f16".into(),
        cpu_moe: None,
        mtp: Some(false),
        family: Some(family.into()),
    };
    let c = quant_catalog(&req("GLM-5.1", 32_768)).unwrap();
    assert_eq!(
        (c.family.as_str(), c.repo.as_str(), c.context_max),
        ("GLM-5.1", "unsloth/GLM-5.1-GGUF", 202_752)
    );
    assert_eq!(c.families, ["GLM-5.1", "GLM-5.2", "GLM-5.3"]);
    let p = plan_quant("UD-IQ2_M", &req("GLM-5.1", 32_768)).unwrap();
    assert_eq!(p.bytes.kv, 32_768.0 * 109_824.0);
    // Asked for 1 M, GLM-5.1 plans its own 202,752 tokens; GLM-5.3 the whole 1 M.
    assert_eq!(
        plan_quant("UD-IQ2_M", &req("GLM-5.1", 1 << 20))
            .unwrap()
            .context,
        202_752
    );
    assert_eq!(
        plan_quant("UD-IQ2_M", &req("glm-5.3", 1 << 20))
            .unwrap()
            .context,
        1 << 20
    );
    let e = quant_catalog(&req("GLM-4.7", 32_768))
        .unwrap_err()
        .to_string();
    assert!(e.contains("GLM-5.1, GLM-5.2, GLM-5.3"), "{e}");
    assert!(plan_quant("UD-IQ2_M", &req("GLM-4.7", 32_768)).is_none());
}
