//! What the planner needs to know about a model, read from GGUF headers alone: every tensor's
//! real size and role, and the KV-cache width per token.

use localglm_gguf::{glm_dsa, TensorInfo, Value};
use serde::Serialize;

/// What a tensor is, for placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Routed MoE experts (`ffn_{gate,up,down,gate_up}_exps`): what `--cpu-moe` moves to RAM.
    Expert,
    /// `token_embd`: looked up row by row, kept in system RAM.
    TokenEmbd,
    /// Everything else the forward pass reads (attention, norms, router, shared experts, dense
    /// FFN, head).
    Other,
    /// The NextN / MTP block's routed experts (loaded with the block).
    MtpExpert,
    /// The rest of the NextN / MTP block: loaded for speculative decoding (the runtime's
    /// default) unless drafting is off ([`ModelSpec::mtp`]).
    Mtp,
}

/// One tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub bytes: u64,
    pub layer: Option<u32>,
    pub kind: Kind,
}

/// KV-cache elements stored per token of context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KvSpec {
    /// Attention cache: MLA latent + rope key per layer (GLM-5.x / DeepSeek), or K and V.
    pub attn: u64,
    /// DSA indexer keys (one per full indexer layer); 0 without an indexer.
    pub indexer: u64,
    /// The MTP block's own caches (its attention and its indexer), when it is counted.
    pub mtp: u64,
}

/// A model as the planner sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    pub name: String,
    pub architecture: String,
    pub tensors: Vec<TensorSpec>,
    pub kv: KvSpec,
    /// Longest context the model supports (`{arch}.context_length`).
    pub context_max: u64,
    pub n_embd: u64,
    pub vocab: u64,
    /// Layers whose experts can be moved, in order (the MoE layers).
    pub moe_layers: Vec<u32>,
    /// Whether the NextN / MTP block is counted: loaded for speculative decoding, as the
    /// runtime does by default (`true` when the file has one); set `false` when drafting is
    /// off. Its routed experts go to the GPU only when no trunk layer's stay in RAM (the
    /// runtime's rule).
    pub mtp: bool,
}

/// Why a model cannot be sized.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file (or split set) is not a readable GGUF.
    #[error(transparent)]
    Gguf(#[from] localglm_gguf::GgufError),
    /// The header lacks what sizing needs.
    #[error("{0}")]
    Metadata(String),
    /// A catalog release that is not in the catalog.
    #[error("No GLM-5.x family named {name}; the catalog has {known}.")]
    UnknownFamily { name: String, known: String },
}

fn get<'a>(meta: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    meta.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn get_u64(meta: &[(String, Value)], key: &str) -> Option<u64> {
    get(meta, key).and_then(Value::as_u64)
}

/// `blk.N.…` → N.
fn layer_of(name: &str) -> Option<u32> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

impl ModelSpec {
    /// Builds the spec from a model's metadata (its first shard) and the tensor infos of all its
    /// shards.
    pub fn from_header(
        name: &str,
        meta: &[(String, Value)],
        tensors: &[TensorInfo],
    ) -> Result<Self, SpecError> {
        let arch = get(meta, "general.architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| SpecError::Metadata("general.architecture is missing".into()))?
            .to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let blocks = get_u64(meta, &key("block_count"))
            .ok_or_else(|| SpecError::Metadata(format!("{} is missing", key("block_count"))))?;
        let nextn = get_u64(meta, &key("nextn_predict_layers")).unwrap_or(0);
        let main_layers = blocks.saturating_sub(nextn);
        let n_embd = get_u64(meta, &key("embedding_length")).unwrap_or(0);
        let vocab = tensors
            .iter()
            .find(|t| t.name == "token_embd.weight")
            .and_then(|t| t.dims.get(1).copied())
            .unwrap_or(0);

        // A GLM-5.x file without `context_length` is taken for GLM-5.1, as the runtime does.
        let ctx_train = get_u64(meta, &key("context_length")).unwrap_or(match arch.as_str() {
            "glm-dsa" => glm_dsa::DEFAULT_CTX,
            _ => 4096,
        });

        let mut moe_layers = Vec::new();
        let specs: Vec<TensorSpec> = tensors
            .iter()
            .map(|t| {
                let layer = layer_of(&t.name);
                let kind = if layer.is_some_and(|l| u64::from(l) >= main_layers) {
                    match t.name.contains("_exps.") {
                        true => Kind::MtpExpert,
                        false => Kind::Mtp,
                    }
                } else if t.name.contains("_exps.") {
                    Kind::Expert
                } else if t.name == "token_embd.weight" {
                    Kind::TokenEmbd
                } else {
                    Kind::Other
                };
                if let (Kind::Expert, Some(l)) = (kind, layer) {
                    if !moe_layers.contains(&l) {
                        moe_layers.push(l);
                    }
                }
                TensorSpec {
                    name: t.name.clone(),
                    bytes: t.size_bytes,
                    layer,
                    kind,
                }
            })
            .collect();
        moe_layers.sort_unstable();

        let kv = match get_u64(meta, &key("attention.kv_lora_rank")) {
            // MLA: one latent (kv_lora_rank) plus the roped key per layer and token.
            Some(rank) => {
                let rope = get_u64(meta, &key("rope.dimension_count")).unwrap_or(64);
                let has_indexer = tensors.iter().any(|t| t.name.contains(".indexer."));
                let full_layers = if has_indexer {
                    glm_dsa::indexer_types(
                        get(meta, &key("attention.indexer.types")),
                        main_layers as usize,
                        ctx_train,
                    )?
                    .iter()
                    .filter(|&&full| full)
                    .count() as u64
                } else {
                    0
                };
                let idx_dim = get_u64(meta, &key("attention.indexer.key_length")).unwrap_or(128);
                // The MTP block has its own latent cache, and indexer keys when it has an
                // indexer.
                let mtp_indexer = tensors.iter().any(|t| {
                    t.name.contains(".indexer.")
                        && layer_of(&t.name).is_some_and(|l| u64::from(l) >= main_layers)
                });
                KvSpec {
                    attn: main_layers * (rank + rope),
                    indexer: full_layers * idx_dim,
                    mtp: nextn * (rank + rope + if mtp_indexer { idx_dim } else { 0 }),
                }
            }
            // Multi-head / grouped-query attention: K and V per KV head, layer and token.
            None => {
                let heads = get_u64(meta, &key("attention.head_count"))
                    .unwrap_or(1)
                    .max(1);
                let kv_heads: Vec<u64> = match get(meta, &key("attention.head_count_kv")) {
                    Some(Value::Array(a)) => a.items.iter().filter_map(Value::as_u64).collect(),
                    Some(v) => vec![v.as_u64().unwrap_or(heads); main_layers as usize],
                    None => vec![heads; main_layers as usize],
                };
                let k = get_u64(meta, &key("attention.key_length")).unwrap_or(n_embd / heads);
                let v = get_u64(meta, &key("attention.value_length")).unwrap_or(k);
                KvSpec {
                    attn: kv_heads.iter().take(main_layers as usize).sum::<u64>() * (k + v),
                    indexer: 0,
                    mtp: 0,
                }
            }
        };
        Ok(Self {
            name: name.to_string(),
            architecture: arch.clone(),
            tensors: specs,
            kv,
            context_max: ctx_train,
            n_embd,
            vocab,
            moe_layers,
            mtp: nextn > 0,
        })
    }

    /// Bytes of the tensors of one kind.
    pub fn bytes_of(&self, kind: Kind) -> u64 {
        self.tensors
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.bytes)
            .sum()
    }

    /// Expert bytes of each MoE layer, in `moe_layers` order.
    pub fn expert_bytes_per_layer(&self) -> Vec<u64> {
        self.moe_layers
            .iter()
            .map(|&l| {
                self.tensors
                    .iter()
                    .filter(|t| t.kind == Kind::Expert && t.layer == Some(l))
                    .map(|t| t.bytes)
                    .sum()
            })
            .collect()
    }

    /// Everything that is loaded (the MTP block only when counted).
    pub fn loaded_bytes(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| self.mtp || !matches!(t.kind, Kind::Mtp | Kind::MtpExpert))
            .map(|t| t.bytes)
            .sum()
    }

    /// Bytes of the MTP block's tensors of `kind` (`Mtp` or `MtpExpert`) when it is counted.
    pub fn mtp_bytes(&self, kind: Kind) -> u64 {
        match self.mtp {
            true => self.bytes_of(kind),
            false => 0,
        }
    }
}
