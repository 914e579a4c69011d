//! The engine the app and CLI use: picks the backend by the GGUF's `general.architecture` —
//! `glm-dsa` (GLM-5.x) and the dense LLaMA family (`llama`, `qwen2`, `qwen3`) run on
//! LocalGLM's own runtime, everything else on `mistralrs` (a dense model too, when the
//! [`LoadSpec`] asks for it) — or, for a [`LoadSpec`] naming a server, the remote backend.

use crate::glm::GlmEngine;
use crate::mistral::{check_gguf_file, MistralRsEngine};
use crate::remote::RemoteEngine;
use crate::{Engine, EngineError, GenerateRequest, Generation, LoadSpec};
use async_trait::async_trait;
use localglm_protocol::ModelInfo;
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Glm,
    Mistral,
    Remote,
}

/// Dispatches to the backend that can run the loaded model.
#[derive(Default)]
pub struct AutoEngine {
    glm: GlmEngine,
    mistral: MistralRsEngine,
    /// The server of a remote "model", while one is in use.
    remote: RwLock<Option<Arc<RemoteEngine>>>,
    /// The backend in use and the loaded model as the app sees it (quant and template
    /// controls filled in), so `loaded()` reports what `load()` returned.
    active: RwLock<Option<(Which, ModelInfo)>>,
}

impl AutoEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn remote(&self) -> Option<Arc<RemoteEngine>> {
        self.remote.read().expect("engine lock").clone()
    }

    /// Switches to a server: it is checked (reachable, key accepted, model listed) before the
    /// local model is let go, so a bad setting leaves the loaded model in place.
    async fn load_remote(
        &self,
        server: crate::remote::RemoteSpec,
        spec: LoadSpec,
    ) -> Result<ModelInfo, EngineError> {
        let remote = Arc::new(RemoteEngine::new(server));
        let info = remote.load(spec).await?;
        self.unload().await;
        *self.remote.write().expect("engine lock") = Some(remote);
        *self.active.write().expect("engine lock") = Some((Which::Remote, info.clone()));
        Ok(info)
    }

    fn active(&self) -> Option<Which> {
        self.active
            .read()
            .expect("engine lock")
            .as_ref()
            .map(|a| a.0)
    }
}

/// `general.architecture` of a GGUF, if it can be read.
pub fn gguf_architecture(path: &std::path::Path) -> Option<String> {
    localglm_gguf::GgufModel::open(path)
        .ok()
        .and_then(|g| g.architecture().map(str::to_owned))
}

/// The main weight type and the thinking controls the embedded chat template offers — read
/// from the template itself, so any GGUF (not a curated list) gets a working Think toggle.
pub fn model_facts(
    path: &std::path::Path,
) -> Option<(Option<String>, localglm_glm::template::TemplateControls)> {
    let g = localglm_gguf::GgufModel::open(path).ok()?;
    let quant = g.census().main_type().map(str::to_owned);
    let controls = localglm_glm::template::TemplateSource::of(&g)
        .and_then(|src| src.compile("model").ok())
        .map(|t| t.controls())
        .unwrap_or_default();
    Some((quant, controls))
}

/// The runtimes that can run the file at `path`, the one it runs on by default first: GLM-5.x
/// only on LocalGLM's runtime; a dense LLaMA-family file that runtime runs, on either; anything
/// else (a dense file it cannot run too) on mistral.rs. Empty when the file cannot be read.
pub fn runtimes(path: &std::path::Path) -> Vec<String> {
    use localglm_protocol::runtime::{LOCALGLM, MISTRALRS};
    let Ok((arch, own)) = read_architecture(path) else {
        return Vec::new();
    };
    let names: &[&str] = match arch.as_deref() {
        Some(localglm_glm::config::ARCH) => &[LOCALGLM],
        Some(a) if localglm_glm::config::DENSE_ARCHES.contains(&a) && own.is_none() => {
            &[LOCALGLM, MISTRALRS]
        }
        _ => &[MISTRALRS],
    };
    names.iter().map(|n| n.to_string()).collect()
}

/// The backend for a file of architecture `arch`: GLM-5.x on LocalGLM's runtime; a dense
/// LLaMA-family model on LocalGLM's runtime too (its CPU kernels or its GPU backend, placed
/// like GLM-5.x), unless the spec asks for mistral.rs; everything else on mistral.rs.
///
/// `own` is why LocalGLM's runtime would not run the file (`localglm_glm::unsupported`): a
/// dense file it cannot run (SentencePiece tokenizers such as Llama 2's, Mixtral, an unknown
/// pre-tokenizer, RoPE scaling, no template) goes to mistral.rs, as before this runtime ran
/// dense models.
fn which_backend(arch: Option<&str>, own: Option<&str>, spec: &LoadSpec) -> Which {
    match arch {
        Some(localglm_glm::config::ARCH) => Which::Glm,
        Some(a) if localglm_glm::config::DENSE_ARCHES.contains(&a) => {
            if let Some(why) = own {
                tracing::info!(
                    "{a} model on mistral.rs: LocalGLM's runtime does not run it ({why})"
                );
            }
            match spec.mistralrs || own.is_some() {
                true => Which::Mistral,
                false => Which::Glm,
            }
        }
        _ => Which::Mistral,
    }
}

/// Opens the GGUF (or split set) with LocalGLM's own bounds-checked reader, so a truncated or
/// foreign file, or a missing shard, fails with a precise reason before any backend sees it.
/// Also says why LocalGLM's own runtime would not run it (`None`: it would).
fn read_architecture(
    path: &std::path::Path,
) -> Result<(Option<String>, Option<String>), EngineError> {
    let g = localglm_gguf::GgufModel::open(path).map_err(|e| EngineError::LoadFailed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((
        g.architecture().map(str::to_owned),
        localglm_glm::unsupported(&g),
    ))
}

#[async_trait]
impl Engine for AutoEngine {
    fn backend(&self) -> &'static str {
        match self.active() {
            Some(Which::Glm) => self.glm.backend(),
            Some(Which::Remote) => "remote",
            _ => self.mistral.backend(),
        }
    }

    async fn load(&self, spec: LoadSpec) -> Result<ModelInfo, EngineError> {
        if let Some(server) = spec.remote.clone() {
            return self.load_remote(server, spec).await;
        }
        check_gguf_file(&spec.path)?;
        let path = spec.path.clone();
        let (arch, own) = tokio::task::spawn_blocking(move || read_architecture(&path))
            .await
            .map_err(crate::load_failed(&spec.path))??;
        // A GPU that is not there, or a GPU placement that cannot fit, is refused before the
        // loaded model is let go.
        let which = which_backend(arch.as_deref(), own.as_deref(), &spec);
        if spec.device == localglm_glm::gpu::DeviceChoice::Gpu && which == Which::Glm {
            let (path, kv) = (spec.path.clone(), spec.kv_cache.unwrap_or_default());
            let (ctx, cpu_moe) = (spec.context_length, spec.cpu_moe);
            let mtp = spec.mtp != localglm_glm::spec::Drafting::Fixed(0);
            tokio::task::spawn_blocking(move || {
                localglm_glm::gpu::check_device(localglm_glm::gpu::DeviceChoice::Gpu)?;
                crate::glm::plan_gpu_load(
                    &path,
                    kv,
                    ctx.unwrap_or(0) as usize,
                    cpu_moe.map(|n| n as usize),
                    mtp,
                )
            })
            .await
            .map_err(crate::load_failed(&spec.path))?
            .map_err(crate::load_failed(&spec.path))?;
        }
        self.unload().await;
        if which == Which::Mistral
            && spec.device == localglm_glm::gpu::DeviceChoice::Gpu
            && crate::mistral::gpu_build().is_none()
        {
            // No silent CPU fallback: this build's mistral.rs has no GPU backend.
            return Err(EngineError::LoadFailed {
                path: spec.path.clone(),
                reason: format!(
                    "this model ({}) runs on mistral.rs, and this build of LocalGLM has no GPU \
                     backend for it (the `metal` / `cuda` build features); the GPU setting \
                     applies to LocalGLM's own runtime here — choose Auto or CPU",
                    arch.as_deref().unwrap_or("unknown architecture")
                ),
            });
        }
        let mut info = if which == Which::Glm {
            self.glm.load(spec).await?
        } else {
            self.mistral.load(spec).await?
        };
        if info.architecture.is_none() {
            info.architecture = arch;
        }
        let path = std::path::PathBuf::from(&info.path);
        if let Ok(Some((quant, controls))) =
            tokio::task::spawn_blocking(move || model_facts(&path)).await
        {
            info.quant = quant;
            info.supports_thinking = controls.thinking_toggle;
            info.effort_levels = controls.effort_levels;
            info.supports_tools = controls.tools;
        }
        *self.active.write().expect("engine lock") = Some((which, info.clone()));
        Ok(info)
    }

    fn loaded(&self) -> Option<ModelInfo> {
        let (which, info) = self.active.read().expect("engine lock").clone()?;
        let present = match which {
            Which::Glm => self.glm.loaded().is_some(),
            Which::Mistral => self.mistral.loaded().is_some(),
            Which::Remote => self.remote().is_some_and(|r| r.loaded().is_some()),
        };
        present.then_some(info)
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        match self.active().ok_or(EngineError::NoModel)? {
            Which::Glm => self.glm.generate(request).await,
            Which::Mistral => self.mistral.generate(request).await,
            Which::Remote => {
                let remote = self.remote().ok_or(EngineError::NoModel)?;
                remote.generate(request).await
            }
        }
    }

    async fn count_tokens(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        match self.active().ok_or(EngineError::NoModel)? {
            Which::Glm => self.glm.count_tokens(request).await,
            Which::Mistral => self.mistral.count_tokens(request).await,
            Which::Remote => {
                let remote = self.remote().ok_or(EngineError::NoModel)?;
                remote.count_tokens(request).await
            }
        }
    }

    async fn unload(&self) {
        self.glm.unload().await;
        self.mistral.unload().await;
        let remote = self.remote.write().expect("engine lock").take();
        if let Some(r) = remote {
            r.unload().await;
        }
        *self.active.write().expect("engine lock") = None;
    }
}
