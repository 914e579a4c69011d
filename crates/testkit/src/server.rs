//! A minimal HTTP/1.1 file server over a directory (`GET /path`, `Range: bytes=a-b`), reading
//! only the bytes asked for (so sparse multi-GB files cost nothing) and counting what it sends.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A running server; it stops with the test process.
pub struct FileServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    served: Arc<AtomicU64>,
}

impl FileServer {
    /// Serves the files under `root`.
    pub fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, counter) = (root.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = handle(stream, &root, &counter);
                });
            }
        });
        Self { url, served }
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
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
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
    let mut left = len;
    let mut buf = vec![0u8; 64 << 10];
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.read_exact(&mut buf[..n])?;
        stream.write_all(&buf[..n])?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        left -= n as u64;
    }
    Ok(())
}
