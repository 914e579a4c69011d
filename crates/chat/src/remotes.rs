//! Remote servers the app chats through (stored in [`Settings`]), edited here so the desktop
//! shell and its tests share one set of rules.
//!
//! Invariants: every stored server has a unique id and an `http(s)://` base URL without a
//! trailing slash; the active server, when set, is one of the stored ones.

use localglm_engine::remote::RemoteSpec;
use localglm_protocol::{AppError, ErrorKind, RemoteServer, Settings};

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::InvalidRequest, message)
}

/// Checks and tidies a server the user entered: trimmed fields, a base URL that is `http` or
/// `https` with a host (a bare `host:port` gets `http://`, and `/v1` is added when no path is
/// given), empty key and model as `None`, and an id when it has none.
pub fn normalize(settings: &Settings, mut server: RemoteServer) -> Result<RemoteServer, AppError> {
    let mut url = server.base_url.trim().trim_end_matches('/').to_string();
    if url.is_empty() {
        return Err(invalid(
            "Enter the server's URL, e.g. http://gpu-node:8000/v1.",
        ));
    }
    if !url.contains("://") {
        url = format!("http://{url}");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(invalid(format!(
            "The URL must start with http:// or https:// (got {scheme}://)."
        )));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid(format!("`{url}` has no valid host.")));
    }
    if !rest.contains('/') {
        url.push_str("/v1");
    }
    server.base_url = url;
    server.name = server.name.trim().to_string();
    server.api_key = server
        .api_key
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    server.model = server
        .model
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    if server.id.trim().is_empty() {
        let taken = |id: &str| settings.remotes.iter().any(|r| r.id == id);
        let mut n = settings.remotes.len() + 1;
        while taken(&format!("remote-{n}")) {
            n += 1;
        }
        server.id = format!("remote-{n}");
    }
    Ok(server)
}

/// Adds a server, or replaces the one with the same id.
pub fn upsert(settings: &mut Settings, server: RemoteServer) {
    match settings.remotes.iter_mut().find(|r| r.id == server.id) {
        Some(slot) => *slot = server,
        None => settings.remotes.push(server),
    }
}

/// A stored server by id.
pub fn find(settings: &Settings, id: &str) -> Result<RemoteServer, AppError> {
    settings
        .remotes
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .ok_or_else(|| AppError::new(ErrorKind::NotFound, format!("No server `{id}` is saved.")))
}

/// Forgets a server (and that it was in use).
pub fn remove(settings: &mut Settings, id: &str) -> Result<(), AppError> {
    let before = settings.remotes.len();
    settings.remotes.retain(|r| r.id != id);
    if settings.remotes.len() == before {
        return Err(AppError::new(
            ErrorKind::NotFound,
            format!("No server `{id}` is saved."),
        ));
    }
    if settings.active_remote.as_deref() == Some(id) {
        settings.active_remote = None;
    }
    Ok(())
}

/// What the engine needs to reach the server.
pub fn spec(server: &RemoteServer) -> RemoteSpec {
    RemoteSpec {
        base_url: server.base_url.clone(),
        api_key: server.api_key.clone(),
        model: server.model.clone(),
    }
}

/// The name the model list shows.
pub fn display_name(server: &RemoteServer) -> String {
    if !server.name.is_empty() {
        server.name.clone()
    } else if let Some(m) = &server.model {
        m.clone()
    } else {
        server.base_url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> RemoteServer {
        RemoteServer {
            id: String::new(),
            name: " GPU node ".into(),
            base_url: url.into(),
            api_key: Some("  ".into()),
            model: Some(" zai-org/GLM-5.2 ".into()),
        }
    }

    #[test]
    fn urls_are_checked_and_completed() {
        let s = Settings::default();
        let n = normalize(&s, server("gpu-node:8000")).unwrap();
        assert_eq!(n.base_url, "http://gpu-node:8000/v1");
        assert_eq!(
            (n.name.as_str(), n.api_key, n.model.as_deref()),
            ("GPU node", None, Some("zai-org/GLM-5.2"))
        );
        assert_eq!(n.id, "remote-1");
        assert_eq!(
            normalize(&s, server("https://api.example.com/openai/v1/"))
                .unwrap()
                .base_url,
            "https://api.example.com/openai/v1"
        );
        for bad in ["", "ftp://x/v1", "http:///v1", "http://a b/v1"] {
            let e = normalize(&s, server(bad)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn add_replace_find_remove() {
        let mut s = Settings::default();
        let a = normalize(&s, server("http://a:1/v1")).unwrap();
        upsert(&mut s, a.clone());
        let b = normalize(&s, server("http://b:1/v1")).unwrap();
        assert_eq!(b.id, "remote-2");
        upsert(&mut s, b.clone());
        upsert(
            &mut s,
            RemoteServer {
                name: "renamed".into(),
                ..a.clone()
            },
        );
        assert_eq!(s.remotes.len(), 2);
        assert_eq!(find(&s, &a.id).unwrap().name, "renamed");
        s.active_remote = Some(a.id.clone());
        remove(&mut s, &a.id).unwrap();
        assert_eq!(s.active_remote, None);
        assert_eq!(find(&s, &a.id).unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(remove(&mut s, &a.id).unwrap_err().kind, ErrorKind::NotFound);
        // A new server never takes a stored id.
        assert_eq!(
            normalize(&s, server("http://c:1/v1")).unwrap().id,
            "remote-3"
        );
        assert_eq!(
            display_name(&RemoteServer {
                name: String::new(),
                ..b
            }),
            "zai-org/GLM-5.2"
        );
    }
}
