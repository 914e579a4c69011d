//! GGUF headers of remote files (e.g. on Hugging Face) by HTTP range requests: only the header
//! bytes of each shard are fetched, so a 239 GB model is sized exactly from a few MB.

use crate::spec::{ModelSpec, SpecError};
use localglm_gguf::{parse_header_prefix, GgufError, Header, SplitName};
use std::io::Read;

/// What went wrong fetching a remote header.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: not a usable GGUF header: {reason}")]
    Header { url: String, reason: String },
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// The headers of a remote model (all shards).
#[derive(Debug)]
pub struct RemoteModel {
    /// Shard URLs and their full sizes (from `Content-Range`).
    pub files: Vec<(String, u64)>,
    pub spec: ModelSpec,
    /// Header bytes downloaded in all.
    pub bytes_fetched: u64,
}

/// First prefix asked for; doubled while the header is longer.
const FIRST_RANGE: u64 = 256 << 10;
/// Largest header accepted (a GLM-5.2 first shard's header with the tokenizer is ~10 MB).
const MAX_HEADER: u64 = 256 << 20;

/// `…-00001-of-00006.gguf` → every shard's URL; any other URL → itself.
pub fn shard_urls(url: &str) -> Vec<String> {
    let (dir, file) = url.rsplit_once('/').unwrap_or(("", url));
    match SplitName::parse(std::path::Path::new(file)) {
        Some(n) => (1..=n.count)
            .map(|i| {
                let name = format!("{}-{i:05}-of-{:05}.gguf", n.base, n.count);
                if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                }
            })
            .collect(),
        None => vec![url.to_string()],
    }
}

fn http_error(url: &str, e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Http {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

/// Fetches bytes `0..len` of `url`; returns them and the file's full size when known. A server
/// that ignores `Range` is read only as far as needed.
fn fetch_prefix(
    agent: &ureq::Agent,
    url: &str,
    len: u64,
) -> Result<(Vec<u8>, Option<u64>), RemoteError> {
    let mut req = agent.get(url).set("Range", &format!("bytes=0-{}", len - 1));
    if let Ok(token) = std::env::var("HF_TOKEN") {
        req = req.set("Authorization", &format!("Bearer {token}"));
    }
    let resp = req.call().map_err(|e| match e {
        ureq::Error::Status(401, _) | ureq::Error::Status(403, _) => http_error(
            url,
            "access denied (a gated repository needs HF_TOKEN set to a token with access)",
        ),
        ureq::Error::Status(404, _) => http_error(url, "not found (404)"),
        other => http_error(url, other),
    })?;
    let total = resp
        .header("Content-Range")
        .and_then(|r| r.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            (resp.status() == 200)
                .then(|| resp.header("Content-Length").and_then(|n| n.parse().ok()))
                .flatten()
        });
    let mut buf = Vec::new();
    resp.into_reader()
        .take(len)
        .read_to_end(&mut buf)
        .map_err(|e| http_error(url, e))?;
    Ok((buf, total))
}

/// The header of one remote file, fetching a growing prefix until it parses.
fn fetch_header(agent: &ureq::Agent, url: &str) -> Result<(Header, Option<u64>, u64), RemoteError> {
    let mut len = FIRST_RANGE;
    let mut fetched = 0;
    loop {
        let (buf, total) = fetch_prefix(agent, url, len)?;
        fetched += buf.len() as u64;
        let whole_file = total.is_some_and(|t| buf.len() as u64 >= t);
        // Tensor data must fit the file's real size (when the server says it), not the prefix.
        match parse_header_prefix(&buf, total.unwrap_or(u64::MAX)) {
            Ok(h) => return Ok((h, total, fetched)),
            // The header parsed, but the file is shorter than its tensors: a broken upload.
            Err(e @ GgufError::Truncated { .. }) if e.to_string().contains("data of tensor") => {
                return Err(RemoteError::Header {
                    url: url.into(),
                    reason: e.to_string(),
                })
            }
            Err(GgufError::Truncated { .. }) if !whole_file && (buf.len() as u64) == len => {
                if len >= MAX_HEADER {
                    return Err(RemoteError::Header {
                        url: url.into(),
                        reason: format!("header longer than {} MiB", MAX_HEADER >> 20),
                    });
                }
                len *= 4;
            }
            Err(e) => {
                return Err(RemoteError::Header {
                    url: url.into(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Reads every shard's header of the model at `url` (any shard of a split set).
pub fn fetch(url: &str) -> Result<RemoteModel, RemoteError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(15))
        .timeout_read(std::time::Duration::from_secs(60))
        .build();
    let urls = shard_urls(url);
    let mut files = Vec::new();
    let mut tensors = Vec::new();
    let mut metadata = Vec::new();
    let mut bytes_fetched = 0;
    for (i, u) in urls.iter().enumerate() {
        let (h, total, fetched) = fetch_header(&agent, u)?;
        bytes_fetched += fetched;
        if i == 0 {
            if let Some(n) = h
                .metadata
                .iter()
                .find(|(k, _)| k == "split.count")
                .and_then(|(_, v)| v.as_u64())
            {
                if n as usize != urls.len() {
                    return Err(RemoteError::Header {
                        url: u.clone(),
                        reason: format!("split.count is {n}, the file name says {}", urls.len()),
                    });
                }
            }
            metadata = h.metadata.clone();
        }
        tensors.extend(h.tensors.into_iter().map(|mut t| {
            t.shard = i;
            t
        }));
        files.push((u.clone(), total.unwrap_or(0)));
    }
    let name = urls[0]
        .rsplit('/')
        .next()
        .unwrap_or(&urls[0])
        .trim_end_matches(".gguf")
        .to_string();
    let spec = ModelSpec::from_header(&name, &metadata, &tensors)?;
    Ok(RemoteModel {
        files,
        spec,
        bytes_fetched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_urls_cover_the_set() {
        let u = "https://huggingface.co/unsloth/GLM-5.2-GGUF/resolve/main/UD-IQ2_M/GLM-5.2-UD-IQ2_M-00002-of-00003.gguf";
        let all = shard_urls(u);
        assert_eq!(all.len(), 3);
        assert!(all[0].ends_with("/UD-IQ2_M/GLM-5.2-UD-IQ2_M-00001-of-00003.gguf"));
        assert_eq!(all[1], u);
        assert_eq!(shard_urls("http://h/m.gguf"), ["http://h/m.gguf"]);
        assert_eq!(
            shard_urls("http://h/m-1-of-2.gguf"),
            ["http://h/m-1-of-2.gguf"]
        );
    }
}
