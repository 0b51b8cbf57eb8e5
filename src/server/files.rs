//! Files from `--web-root` (development): only regular files inside the
//! root once symlinks are resolved, opened without blocking (a FIFO never
//! parks a worker), and streamed in chunks under the write timeout, never
//! read whole into memory.
//!
//! ```text
//!  root/rel ─► canonicalize (symlinks resolved) ─► inside root? ─► a regular file? ─► open O_NONBLOCK
//!           ─► head (Content-Length) ─► 64 KiB chunks ─► socket (--write-timeout per write)
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::transport::Transport;

/// Bytes read from a file and written per step.
const CHUNK: usize = 64 * 1024;

/// The file `rel` under `root`, with its length, if it may be served.
pub fn open(root: &Path, rel: &Path) -> Option<(File, u64)> {
    let root = root.canonicalize().ok()?;
    let path = root.join(rel).canonicalize().ok()?;
    if !path.starts_with(&root) {
        return None;
    }
    if !std::fs::metadata(&path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    // What was opened, not what the name pointed at a moment before.
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta.len()))
}

/// Write `head`, then (unless `head_only`) `len` bytes of `file`.
pub fn send(
    transport: &Transport,
    mut file: File,
    len: u64,
    head: &[u8],
    head_only: bool,
) -> io::Result<()> {
    transport.write_all(head)?;
    if head_only {
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK.min(len as usize).max(1)];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            // The file shrank while it was sent: the length was promised.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        transport.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}
