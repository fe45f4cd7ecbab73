//! Free space on the file system that holds a path (the database's), for the web page's
//! health panel: `statvfs(3)`, through `rustix` (no `unsafe` here).

use std::path::Path;

/// Space on one file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Available to an unprivileged process (what the station's user can still write).
    pub free_bytes: u64,
    /// Size of the file system.
    pub total_bytes: u64,
}

/// The space on the file system holding `path` (or its directory, when the file does not
/// exist yet).
pub fn disk_space(path: &Path) -> std::io::Result<DiskSpace> {
    let target = if path.exists() {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    let s = rustix::fs::statvfs(target).map_err(std::io::Error::from)?;
    Ok(DiskSpace {
        free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
        total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_of_a_temporary_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = disk_space(&dir.path().join("not-yet.db")).unwrap();
        assert!(s.total_bytes > 0);
        assert!(s.free_bytes <= s.total_bytes);
    }
}
