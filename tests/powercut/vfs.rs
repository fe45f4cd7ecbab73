//! A SQLite VFS that loses, at a simulated power cut, every write not yet synced.
//!
//! It wraps SQLite's default `unix` VFS. For files in a registered [`Session`] directory
//! (the database, its `-wal` and a rollback `-journal`):
//! * `xWrite` and `xTruncate` go to an in-memory overlay per file path (the kernel's page
//!   cache, shared by every handle on the file and kept across close and reopen); `xRead`
//!   and `xFileSize` see the overlay over the real file;
//! * `xSync` writes the file's overlay to the real file and fsyncs it: the real files hold
//!   exactly what was synced;
//! * everything else — locks, the `-shm` wal-index (`xShmMap` & friends), `xAccess`,
//!   `xFullPathname`, randomness, sleep, time — passes through to `unix`.
//!
//! The cut comes after a chosen number of writes, truncations and syncs (inside that
//! operation, before it takes effect) or when the test asks. Under the one mutex every
//! overlay operation and every sync takes, it copies the durable image — the real files of
//! the directory as synced, without the `-shm`, whose content is shared memory and lost
//! with the power — to a fresh directory. Nothing the doomed run does afterwards can reach
//! that copy: it goes on normally in its own directory, which is thrown away, and its
//! syncs are no longer counted. (Discarding its syncs and deletions instead made it see
//! its own deleted rollback journal again and roll its own transactions back.)
//!
//! `xSync` of a directory is not modelled: a file created and never synced survives the
//! cut as it was created (empty), which SQLite treats as no file.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use rusqlite::ffi;

/// The name the shim is registered under (`StoreOptions::vfs`).
pub const NAME: &str = "powercut";
const NAME_C: &CStr = c"powercut";

/// Overlay granularity (file offsets, aligned).
const CHUNK: u64 = 4096;

/// The unsynced writes of one file: what the kernel would hold in its page cache.
struct Overlay {
    /// Chunk index -> its current content (zero past `size`).
    chunks: BTreeMap<u64, Box<[u8]>>,
    /// The file's size as the running program sees it.
    size: u64,
    /// Real bytes at or past this offset are dead: truncated since the last sync. Never
    /// above the real file's length.
    floor: u64,
}

/// One directory's files and its cut.
struct SessionState {
    files: HashMap<String, Overlay>,
    /// Writes, truncations and syncs left before the cut.
    countdown: Option<u64>,
    cut_to: PathBuf,
    cut: Arc<AtomicBool>,
    /// Syncs of a `-wal` file that reached the real file (before the cut).
    wal_syncs: u64,
    /// Writes, truncations and syncs seen.
    ops: u64,
    /// Bytes written to the real files by syncs before the cut, and those syncs.
    synced_bytes: u64,
    syncs: u64,
}

#[derive(Default)]
struct State {
    sessions: HashMap<PathBuf, SessionState>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static UNIX: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(std::ptr::null_mut());
static REGISTER: Once = Once::new();

fn lock() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.load(Ordering::Acquire)
}

/// A directory whose files go through the shim until the session is dropped.
pub struct Session {
    dir: PathBuf,
    cut: Arc<AtomicBool>,
}

impl Session {
    /// Registers `dir` (which must exist): after `cut_after` writes, truncations and
    /// syncs of its files, the durable image is copied to `cut_to` (created here).
    pub fn start(dir: &Path, cut_after: u64, cut_to: &Path) -> Session {
        register();
        let dir = std::fs::canonicalize(dir).expect("canonical session directory");
        std::fs::create_dir_all(cut_to).expect("create the cut directory");
        let cut = Arc::new(AtomicBool::new(false));
        let mut guard = lock();
        let state = guard.get_or_insert_with(State::default);
        let old = state.sessions.insert(
            dir.clone(),
            SessionState {
                files: HashMap::new(),
                countdown: Some(cut_after),
                cut_to: cut_to.to_path_buf(),
                cut: cut.clone(),
                wal_syncs: 0,
                ops: 0,
                synced_bytes: 0,
                syncs: 0,
            },
        );
        assert!(old.is_none(), "{} already has a session", dir.display());
        Session { dir, cut }
    }

    /// The power is off: the durable image was copied.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Cuts the power now (if the countdown has not).
    pub fn cut_now(&self) {
        let mut guard = lock();
        if let Some(s) = guard.as_mut().and_then(|st| st.sessions.get_mut(&self.dir)) {
            if !s.cut.load(Ordering::SeqCst) {
                cut(s, &self.dir);
            }
        }
    }

    /// Syncs of a `-wal` file that reached the disk so far (none after the cut).
    pub fn wal_syncs(&self) -> u64 {
        let guard = lock();
        guard
            .as_ref()
            .and_then(|st| st.sessions.get(&self.dir))
            .map_or(0, |s| s.wal_syncs)
    }

    /// Writes, truncations and syncs seen so far.
    pub fn ops(&self) -> u64 {
        let guard = lock();
        guard
            .as_ref()
            .and_then(|st| st.sessions.get(&self.dir))
            .map_or(0, |s| s.ops)
    }

    /// Syncs that reached the disk before the cut, and the bytes they wrote to it.
    pub fn synced(&self) -> (u64, u64) {
        let guard = lock();
        guard
            .as_ref()
            .and_then(|st| st.sessions.get(&self.dir))
            .map_or((0, 0), |s| (s.syncs, s.synced_bytes))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(st) = lock().as_mut() {
            st.sessions.remove(&self.dir);
        }
    }
}

/// Copies the durable image of `dir` and dooms the session. Called under the lock.
fn cut(s: &mut SessionState, dir: &Path) {
    s.cut.store(true, Ordering::SeqCst);
    s.countdown = None;
    let entries = std::fs::read_dir(dir).expect("list the session directory");
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !name.to_string_lossy().ends_with("-shm") {
            std::fs::copy(entry.path(), s.cut_to.join(&name)).expect("copy the durable image");
        }
    }
}

/// Counts one write, truncation or sync; cuts when the countdown ends. True once the
/// power is off (the operation cannot reach the image).
fn tick(s: &mut SessionState, dir: &Path) -> bool {
    s.ops += 1;
    if let Some(n) = s.countdown.as_mut() {
        if *n == 0 {
            cut(s, dir);
        } else {
            *n -= 1;
        }
    }
    s.cut.load(Ordering::SeqCst)
}

/// Registers the shim (once) beside the default VFS, which stays the default.
pub fn register() {
    REGISTER.call_once(|| unsafe {
        let base = ffi::sqlite3_vfs_find(std::ptr::null());
        assert!(!base.is_null(), "SQLite has no default VFS");
        UNIX.store(base, Ordering::Release);
        let vfs = Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: std::mem::size_of::<ShimFile>() as c_int,
            mxPathname: (*base).mxPathname,
            pNext: std::ptr::null_mut(),
            zName: NAME_C.as_ptr(),
            pAppData: std::ptr::null_mut(),
            xOpen: Some(x_open),
            xDelete: Some(x_delete),
            xAccess: Some(x_access),
            xFullPathname: Some(x_full_pathname),
            xDlOpen: None,
            xDlError: None,
            xDlSym: None,
            xDlClose: None,
            xRandomness: Some(x_randomness),
            xSleep: Some(x_sleep),
            xCurrentTime: Some(x_current_time),
            xGetLastError: Some(x_get_last_error),
            xCurrentTimeInt64: Some(x_current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        });
        let rc = ffi::sqlite3_vfs_register(Box::into_raw(vfs), 0);
        assert_eq!(rc, ffi::SQLITE_OK, "register the {NAME} VFS");
    });
}

/// Our file: the `unix` file it wraps, and where its overlay lives.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    real_words: usize,
    /// (session directory, file path) when the file is overlaid.
    key: Option<(PathBuf, String)>,
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: shared memory, but no xFetch (memory-mapped reads would bypass us).
    iVersion: 2,
    xClose: Some(f_close),
    xRead: Some(f_read),
    xWrite: Some(f_write),
    xTruncate: Some(f_truncate),
    xSync: Some(f_sync),
    xFileSize: Some(f_file_size),
    xLock: Some(f_lock),
    xUnlock: Some(f_unlock),
    xCheckReservedLock: Some(f_check_reserved_lock),
    xFileControl: Some(f_file_control),
    xSectorSize: Some(f_sector_size),
    xDeviceCharacteristics: Some(f_device_characteristics),
    xShmMap: Some(f_shm_map),
    xShmLock: Some(f_shm_lock),
    xShmBarrier: Some(f_shm_barrier),
    xShmUnmap: Some(f_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The session directory of `path`, when it has one.
fn session_of(path: &str) -> Option<PathBuf> {
    let dir = Path::new(path).parent()?.to_path_buf();
    let guard = lock();
    guard
        .as_ref()
        .filter(|st| st.sessions.contains_key(&dir))
        .map(|_| dir)
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let base = unix();
    let words = ((*base).szOsFile as usize).div_ceil(8);
    let real = Box::into_raw(vec![0u64; words].into_boxed_slice()) as *mut ffi::sqlite3_file;
    (*file).pMethods = std::ptr::null();
    let rc = ((*base).xOpen.expect("unix xOpen"))(base, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            real as *mut u64,
            words,
        )));
        return rc;
    }
    let overlaid = ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL;
    let mut key = None;
    if !name.is_null() && flags & overlaid != 0 {
        let path = CStr::from_ptr(name).to_string_lossy().into_owned();
        if let Some(dir) = session_of(&path) {
            let mut size: ffi::sqlite3_int64 = 0;
            let rc = ((*(*real).pMethods).xFileSize.expect("unix xFileSize"))(real, &mut size);
            if rc != ffi::SQLITE_OK {
                size = 0;
            }
            let mut guard = lock();
            if let Some(s) = guard.as_mut().and_then(|st| st.sessions.get_mut(&dir)) {
                s.files.entry(path.clone()).or_insert_with(|| Overlay {
                    chunks: BTreeMap::new(),
                    size: size as u64,
                    floor: size as u64,
                });
            }
            key = Some((dir, path));
        }
    }
    std::ptr::write(
        file as *mut ShimFile,
        ShimFile {
            base: ffi::sqlite3_file {
                pMethods: &IO_METHODS,
            },
            real,
            real_words: words,
            key,
        },
    );
    rc
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    if !name.is_null() {
        let path = CStr::from_ptr(name).to_string_lossy().into_owned();
        if let Some(dir) = session_of(&path) {
            let mut guard = lock();
            if let Some(s) = guard.as_mut().and_then(|st| st.sessions.get_mut(&dir)) {
                s.files.remove(&path);
            }
        }
    }
    let base = unix();
    ((*base).xDelete.expect("unix xDelete"))(base, name, sync_dir)
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let base = unix();
    ((*base).xAccess.expect("unix xAccess"))(base, name, flags, out)
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let base = unix();
    ((*base).xFullPathname.expect("unix xFullPathname"))(base, name, n, out)
}

unsafe extern "C" fn x_randomness(
    _vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let base = unix();
    ((*base).xRandomness.expect("unix xRandomness"))(base, n, out)
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    let base = unix();
    ((*base).xSleep.expect("unix xSleep"))(base, micros)
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let base = unix();
    ((*base).xCurrentTime.expect("unix xCurrentTime"))(base, out)
}

unsafe extern "C" fn x_get_last_error(
    _vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let base = unix();
    ((*base).xGetLastError.expect("unix xGetLastError"))(base, n, out)
}

unsafe extern "C" fn x_current_time_int64(
    _vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    let base = unix();
    ((*base).xCurrentTimeInt64.expect("unix xCurrentTimeInt64"))(base, out)
}

unsafe fn shim<'a>(f: *mut ffi::sqlite3_file) -> &'a mut ShimFile {
    &mut *(f as *mut ShimFile)
}

unsafe fn real_methods(f: &ShimFile) -> &'static ffi::sqlite3_io_methods {
    &*(*f.real).pMethods
}

unsafe extern "C" fn f_close(f: *mut ffi::sqlite3_file) -> c_int {
    let file = shim(f);
    let rc = (real_methods(file).xClose.expect("unix xClose"))(file.real);
    drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
        file.real as *mut u64,
        file.real_words,
    )));
    std::ptr::drop_in_place(f as *mut ShimFile);
    rc
}

/// Reads real bytes `[off, off + buf.len())`; what lies past the real file reads as zero.
unsafe fn real_read(file: &ShimFile, buf: &mut [u8], off: u64) -> c_int {
    if buf.is_empty() {
        return ffi::SQLITE_OK;
    }
    let rc = (real_methods(file).xRead.expect("unix xRead"))(
        file.real,
        buf.as_mut_ptr() as *mut c_void,
        buf.len() as c_int,
        off as ffi::sqlite3_int64,
    );
    if rc == ffi::SQLITE_IOERR_SHORT_READ {
        ffi::SQLITE_OK // unix zero-fills the rest
    } else {
        rc
    }
}

/// Reads `[off, off + buf.len())` of the file as the program sees it; bytes past its
/// size read as zero.
unsafe fn overlay_read(file: &ShimFile, o: &Overlay, buf: &mut [u8], off: u64) -> c_int {
    let end = off + buf.len() as u64;
    let mut pos = off;
    while pos < end {
        let idx = pos / CHUNK;
        let chunk_end = ((idx + 1) * CHUNK).min(end);
        let piece = &mut buf[(pos - off) as usize..(chunk_end - off) as usize];
        if let Some(c) = o.chunks.get(&idx) {
            let at = (pos - idx * CHUNK) as usize;
            piece.copy_from_slice(&c[at..at + piece.len()]);
        } else {
            piece.fill(0);
            let live_end = chunk_end.min(o.floor).min(o.size);
            if live_end > pos {
                let rc = real_read(file, &mut piece[..(live_end - pos) as usize], pos);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
        }
        pos = chunk_end;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn f_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let file = shim(f);
    let Some((dir, path)) = &file.key else {
        return (real_methods(file).xRead.expect("unix xRead"))(file.real, buf, amount, offset);
    };
    let out = std::slice::from_raw_parts_mut(buf as *mut u8, amount as usize);
    let guard = lock();
    let Some(o) = guard
        .as_ref()
        .and_then(|st| st.sessions.get(dir))
        .and_then(|s| s.files.get(path))
    else {
        return ffi::SQLITE_IOERR_READ;
    };
    let off = offset as u64;
    let rc = overlay_read(file, o, out, off);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if off + amount as u64 > o.size {
        // Past the end: zero-filled, and said so (SQLite relies on it).
        let valid = o.size.saturating_sub(off) as usize;
        let n = out.len();
        out[valid.min(n)..].fill(0);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn f_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let file = shim(f);
    let Some((dir, path)) = &file.key else {
        return (real_methods(file).xWrite.expect("unix xWrite"))(file.real, buf, amount, offset);
    };
    let data = std::slice::from_raw_parts(buf as *const u8, amount as usize);
    let mut guard = lock();
    let Some(s) = guard.as_mut().and_then(|st| st.sessions.get_mut(dir)) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    tick(s, dir);
    let Some(o) = s.files.get_mut(path) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let off = offset as u64;
    let end = off + data.len() as u64;
    let mut pos = off;
    while pos < end {
        let idx = pos / CHUNK;
        let start = idx * CHUNK;
        if !o.chunks.contains_key(&idx) {
            let mut c = vec![0u8; CHUNK as usize].into_boxed_slice();
            let live_end = (start + CHUNK).min(o.floor).min(o.size);
            if live_end > start {
                let rc = real_read(file, &mut c[..(live_end - start) as usize], start);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            o.chunks.insert(idx, c);
        }
        let c = o.chunks.get_mut(&idx).expect("chunk just loaded");
        let chunk_end = (start + CHUNK).min(end);
        let at = (pos - start) as usize;
        c[at..at + (chunk_end - pos) as usize]
            .copy_from_slice(&data[(pos - off) as usize..(chunk_end - off) as usize]);
        pos = chunk_end;
    }
    o.size = o.size.max(end);
    ffi::SQLITE_OK
}

unsafe extern "C" fn f_truncate(f: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let file = shim(f);
    let Some((dir, path)) = &file.key else {
        return (real_methods(file).xTruncate.expect("unix xTruncate"))(file.real, size);
    };
    let mut guard = lock();
    let Some(s) = guard.as_mut().and_then(|st| st.sessions.get_mut(dir)) else {
        return ffi::SQLITE_IOERR_TRUNCATE;
    };
    tick(s, dir);
    let Some(o) = s.files.get_mut(path) else {
        return ffi::SQLITE_IOERR_TRUNCATE;
    };
    let size = size as u64;
    if size < o.size {
        let keep = size.div_ceil(CHUNK);
        o.chunks.split_off(&keep);
        if let Some(c) = o.chunks.get_mut(&(size / CHUNK)) {
            c[(size % CHUNK) as usize..].fill(0);
        }
        o.floor = o.floor.min(size);
    }
    o.size = size;
    ffi::SQLITE_OK
}

/// Writes the overlay to the real file and syncs it.
unsafe fn flush(file: &ShimFile, o: &mut Overlay, flags: c_int) -> c_int {
    let m = real_methods(file);
    let mut real_size: ffi::sqlite3_int64 = 0;
    let rc = (m.xFileSize.expect("unix xFileSize"))(file.real, &mut real_size);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if (real_size as u64) > o.floor {
        let rc = (m.xTruncate.expect("unix xTruncate"))(file.real, o.floor as ffi::sqlite3_int64);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    for (idx, c) in &o.chunks {
        let start = idx * CHUNK;
        if start >= o.size {
            break;
        }
        let len = CHUNK.min(o.size - start) as usize;
        let rc = (m.xWrite.expect("unix xWrite"))(
            file.real,
            c.as_ptr() as *const c_void,
            len as c_int,
            start as ffi::sqlite3_int64,
        );
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let rc = (m.xFileSize.expect("unix xFileSize"))(file.real, &mut real_size);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if real_size as u64 != o.size {
        let rc = (m.xTruncate.expect("unix xTruncate"))(file.real, o.size as ffi::sqlite3_int64);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let rc = (m.xSync.expect("unix xSync"))(file.real, flags);
    if rc == ffi::SQLITE_OK {
        o.chunks.clear();
        o.floor = o.size;
    }
    rc
}

unsafe extern "C" fn f_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let file = shim(f);
    let Some((dir, path)) = &file.key else {
        return (real_methods(file).xSync.expect("unix xSync"))(file.real, flags);
    };
    let mut guard = lock();
    let Some(s) = guard.as_mut().and_then(|st| st.sessions.get_mut(dir)) else {
        return ffi::SQLITE_IOERR_FSYNC;
    };
    let doomed = tick(s, dir);
    let Some(o) = s.files.get_mut(path) else {
        return ffi::SQLITE_IOERR_FSYNC;
    };
    let bytes = o.chunks.len() as u64 * CHUNK;
    let rc = flush(file, o, flags);
    if rc == ffi::SQLITE_OK && !doomed {
        s.syncs += 1;
        s.synced_bytes += bytes;
        if path.ends_with("-wal") {
            s.wal_syncs += 1;
        }
    }
    rc
}

unsafe extern "C" fn f_file_size(f: *mut ffi::sqlite3_file, out: *mut ffi::sqlite3_int64) -> c_int {
    let file = shim(f);
    let Some((dir, path)) = &file.key else {
        return (real_methods(file).xFileSize.expect("unix xFileSize"))(file.real, out);
    };
    let guard = lock();
    match guard
        .as_ref()
        .and_then(|st| st.sessions.get(dir))
        .and_then(|s| s.files.get(path))
    {
        Some(o) => {
            *out = o.size as ffi::sqlite3_int64;
            ffi::SQLITE_OK
        }
        None => ffi::SQLITE_IOERR_FSTAT,
    }
}

unsafe extern "C" fn f_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let file = shim(f);
    (real_methods(file).xLock.expect("unix xLock"))(file.real, level)
}

unsafe extern "C" fn f_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let file = shim(f);
    (real_methods(file).xUnlock.expect("unix xUnlock"))(file.real, level)
}

unsafe extern "C" fn f_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let file = shim(f);
    (real_methods(file)
        .xCheckReservedLock
        .expect("unix xCheckReservedLock"))(file.real, out)
}

unsafe extern "C" fn f_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let file = shim(f);
    if file.key.is_some() && op == ffi::SQLITE_FCNTL_SIZE_HINT {
        // A hint only; `unix` would extend the real file behind the overlay.
        return ffi::SQLITE_OK;
    }
    (real_methods(file).xFileControl.expect("unix xFileControl"))(file.real, op, arg)
}

unsafe extern "C" fn f_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    let file = shim(f);
    (real_methods(file).xSectorSize.expect("unix xSectorSize"))(file.real)
}

unsafe extern "C" fn f_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    let file = shim(f);
    (real_methods(file)
        .xDeviceCharacteristics
        .expect("unix xDeviceCharacteristics"))(file.real)
}

unsafe extern "C" fn f_shm_map(
    f: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let file = shim(f);
    (real_methods(file).xShmMap.expect("unix xShmMap"))(file.real, region, size, extend, out)
}

unsafe extern "C" fn f_shm_lock(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let file = shim(f);
    (real_methods(file).xShmLock.expect("unix xShmLock"))(file.real, offset, n, flags)
}

unsafe extern "C" fn f_shm_barrier(f: *mut ffi::sqlite3_file) {
    let file = shim(f);
    (real_methods(file).xShmBarrier.expect("unix xShmBarrier"))(file.real)
}

unsafe extern "C" fn f_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let file = shim(f);
    (real_methods(file).xShmUnmap.expect("unix xShmUnmap"))(file.real, delete)
}
