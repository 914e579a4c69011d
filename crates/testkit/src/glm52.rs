//! GLM-5.2's tensor layout as it is in Unsloth's GGUF files (spec §C.4: 3 global tensors, 3 dense
//! blocks × 18, 75 MoE blocks × 23, the MTP block 78 with 27 = 1,809 tensors), with a per-role
//! type mix, as tensor infos or as sparse (header-only) GGUF files, single or split.

use localglm_gguf::writer::GgufWriter;
use localglm_gguf::{TensorInfo, Value};
use localglm_quants::GgmlType::{self, F32, IQ2_XS, IQ3_XXS, Q8_0};
use std::path::{Path, PathBuf};

/// Types per tensor role.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub experts_gate_up: GgmlType,
    pub experts_down: GgmlType,
    /// Everything else that is not F32 (attention, indexer, dense FFN, shared experts, head,
    /// embeddings).
    pub other: GgmlType,
}

/// UD-Q2_K_XL as observed (spec §F): routed gate/up IQ2_XS, down IQ3_XXS, the rest Q8_0.
pub const UD_Q2_K_XL: Mix = Mix {
    experts_gate_up: IQ2_XS,
    experts_down: IQ3_XXS,
    other: Q8_0,
};

/// `(name, ne, type)` of every tensor, in file order.
pub fn tensors(mix: Mix) -> Vec<(String, Vec<u64>, GgmlType)> {
    let o = mix.other;
    let mut ts: Vec<(String, Vec<u64>, GgmlType)> = vec![
        ("token_embd.weight".into(), vec![6144, 154880], o),
        ("output_norm.weight".into(), vec![6144], F32),
        ("output.weight".into(), vec![6144, 154880], o),
    ];
    for n in 0..79 {
        let mut add = |s: &str, dims: &[u64], ty: GgmlType| {
            let name = if s.ends_with(".bias") {
                format!("blk.{n}.{s}")
            } else {
                format!("blk.{n}.{s}.weight")
            };
            ts.push((name, dims.to_vec(), ty));
        };
        add("attn_norm", &[6144], F32);
        add("attn_q_a", &[6144, 2048], o);
        add("attn_q_a_norm", &[2048], F32);
        add("attn_q_b", &[2048, 16384], o);
        add("attn_kv_a_mqa", &[6144, 576], o);
        add("attn_kv_a_norm", &[512], F32);
        add("attn_k_b", &[192, 512, 64], Q8_0);
        add("attn_v_b", &[512, 256, 64], o);
        add("attn_output", &[16384, 6144], o);
        add("ffn_norm", &[6144], F32);
        add("indexer.attn_q_b", &[2048, 4096], o);
        add("indexer.attn_k", &[6144, 128], o);
        add("indexer.k_norm", &[128], F32);
        add("indexer.k_norm.bias", &[128], F32);
        add("indexer.proj", &[6144, 32], Q8_0);
        if n < 3 {
            add("ffn_gate", &[6144, 12288], o);
            add("ffn_up", &[6144, 12288], o);
            add("ffn_down", &[12288, 6144], o);
        } else {
            add("ffn_gate_inp", &[6144, 256], F32);
            add("exp_probs_b.bias", &[256], F32);
            add("ffn_gate_exps", &[6144, 2048, 256], mix.experts_gate_up);
            add("ffn_up_exps", &[6144, 2048, 256], mix.experts_gate_up);
            add("ffn_down_exps", &[2048, 6144, 256], mix.experts_down);
            add("ffn_gate_shexp", &[6144, 2048], o);
            add("ffn_up_shexp", &[6144, 2048], o);
            add("ffn_down_shexp", &[2048, 6144], o);
        }
        if n == 78 {
            add("nextn.eh_proj", &[12288, 6144], o);
            add("nextn.enorm", &[6144], F32);
            add("nextn.hnorm", &[6144], F32);
            add("nextn.shared_head_norm", &[6144], F32);
        }
    }
    ts
}

/// The same as tensor infos (offsets left 0, all in shard 0).
pub fn tensor_infos(mix: Mix) -> Vec<TensorInfo> {
    tensors(mix)
        .into_iter()
        .map(|(name, dims, ty)| {
            let n: u64 = dims.iter().product();
            TensorInfo {
                name,
                size_bytes: ty.row_bytes(n as usize).expect("whole blocks") as u64,
                n_elems: n,
                dims,
                ty,
                offset: 0,
                shard: 0,
            }
        })
        .collect()
}

/// The metadata the planner reads (the real files carry many more keys).
pub fn metadata() -> Vec<(String, Value)> {
    [
        ("general.architecture", Value::String("glm-dsa".into())),
        ("glm-dsa.block_count", Value::U32(79)),
        ("glm-dsa.nextn_predict_layers", Value::U32(1)),
        ("glm-dsa.embedding_length", Value::U32(6144)),
        ("glm-dsa.attention.kv_lora_rank", Value::U32(512)),
        ("glm-dsa.rope.dimension_count", Value::U32(64)),
        ("glm-dsa.context_length", Value::U32(1_048_576)),
        ("glm-dsa.attention.indexer.key_length", Value::U32(128)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Writes the model as `shards` sparse GGUF files `{stem}-0000i-of-0000n.gguf` in `dir`
/// (tensors split in file order, metadata in the first); returns their paths.
pub fn write_sparse_split(dir: &Path, stem: &str, mix: Mix, shards: u16) -> Vec<PathBuf> {
    let all = tensors(mix);
    let per = all.len().div_ceil(shards as usize);
    let mut paths = Vec::new();
    for (i, chunk) in all.chunks(per).enumerate() {
        let mut w = GgufWriter::new();
        if i == 0 {
            for (k, v) in metadata() {
                w.kv(&k, v);
            }
        }
        w.kv("split.no", Value::U16(i as u16))
            .kv("split.count", Value::U16(shards))
            .kv("split.tensors.count", Value::I32(all.len() as i32));
        for (name, dims, ty) in chunk {
            w.tensor_zeros(name, dims, *ty).expect("valid shape");
        }
        let path = dir.join(format!("{stem}-{:05}-of-{shards:05}.gguf", i + 1));
        w.write(&path).expect("write shard");
        paths.push(path);
    }
    paths
}
