//! A minimal HTTP/1.1 file server over a directory (`GET /path`, `Range: bytes=a-b`), reading
//! only the bytes asked for (so sparse multi-GB files cost nothing) and counting what it sends.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Misbehaviour to inject.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Cut responses longer than this after this many bytes …
    pub drop_after: u64,
    /// … this many times.
    pub drops: u64,
    /// Send at most this fast.
    pub bytes_per_s: Option<u64>,
}

/// A running server; it stops with the test process.
pub struct FileServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    served: Arc<AtomicU64>,
    /// Responses still to be cut off (see [`FileServer::start_with_drops`]).
    drops: Arc<AtomicU64>,
}

impl FileServer {
    /// Serves the files under `root`.
    pub fn start(root: PathBuf) -> Self {
        Self::start_with(root, Faults::default())
    }

    /// Like [`Self::start`], but the first `times` responses longer than `after_bytes` are cut
    /// off (the connection closed) after `after_bytes` bytes, as a flaky network would.
    pub fn start_with_drops(root: PathBuf, after_bytes: u64, times: u64) -> Self {
        Self::start_with(
            root,
            Faults {
                drop_after: after_bytes,
                drops: times,
                bytes_per_s: None,
            },
        )
    }

    /// Serves with the given faults.
    pub fn start_with(root: PathBuf, faults: Faults) -> Self {
        let Faults {
            drop_after: after_bytes,
            drops: times,
            bytes_per_s,
        } = faults;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let served = Arc::new(AtomicU64::new(0));
        let drops = Arc::new(AtomicU64::new(times));
        let (counter, left) = (served.clone(), drops.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, counter, left) = (root.clone(), counter.clone(), left.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, &root, &counter, &left, after_bytes, bytes_per_s);
                });
            }
        });
        Self { url, served, drops }
    }

    /// Cut-offs not yet used.
    pub fn drops_left(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Body bytes sent so far.
    pub fn bytes_served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

fn handle(
    mut stream: TcpStream,
    root: &std::path::Path,
    counter: &AtomicU64,
    drops: &AtomicU64,
    drop_after: u64,
    bytes_per_s: Option<u64>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    // The query (e.g. `?recursive=true` of the hub's tree API) does not select the file.
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut range: Option<(u64, Option<u64>)> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            if let Some((a, b)) = v.trim().split_once('-') {
                range = a.parse().ok().map(|a| (a, b.parse().ok()));
            }
        }
    }
    let file = root.join(path.trim_start_matches('/'));
    if file.is_dir() {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    }
    let Ok(mut f) = File::open(&file) else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
    };
    let total = f.metadata()?.len();
    let (status, a, b) = match range {
        Some((a, _)) if a >= total => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{total}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            return stream.write_all(head.as_bytes());
        }
        Some((a, b)) => (
            "206 Partial Content",
            a,
            b.unwrap_or(total - 1).min(total - 1),
        ),
        None => ("200 OK", 0, total.saturating_sub(1)),
    };
    let len = if total == 0 { 0 } else { b - a + 1 };
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {len}\r\nconnection: close\r\n");
    if status.starts_with("206") {
        head.push_str(&format!("content-range: bytes {a}-{b}/{total}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    f.seek(SeekFrom::Start(a))?;
    let cut = len > drop_after
        && drops
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1))
            .is_ok();
    let mut left = if cut { drop_after } else { len };
    let mut buf = vec![0u8; 64 << 10];
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.read_exact(&mut buf[..n])?;
        stream.write_all(&buf[..n])?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        left -= n as u64;
        sent += n as u64;
        if let Some(rate) = bytes_per_s {
            let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(())
}
