//! The memory allocator: mimalloc instead of the system's. The send path
//! allocates and frees many small buffers (JSON, signatures, write
//! batches); under glibc's malloc that bookkeeping cost about a tenth of the
//! server's CPU in the one-room send benchmark.

use libmimalloc_sys as ffi;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit` option (its number in `mimalloc.h`).
const OPTION_ARENA_EAGER_COMMIT: ffi::mi_option_t = 4;

/// Runs from `.init_array`, before Rust's runtime allocates anything and so
/// before mimalloc reserves its first arena.
extern "C" fn configure() {
    // Commit arena memory as it is used rather than all at once, so that an
    // idle server's resident memory is what it actually holds.
    // SAFETY: setting an option has no preconditions.
    unsafe { ffi::mi_option_set(OPTION_ARENA_EAGER_COMMIT, 0) };
}

#[used]
#[link_section = ".init_array"]
static CONFIGURE: extern "C" fn() = configure;

/// Gives freed memory back to the system now: Rust's (mimalloc) instead of
/// after its purge delay (after a password hash has freed its 19 MiB), and
/// the C++ side's (RocksDB allocates through glibc's malloc), which glibc
/// would otherwise keep in its heap.
pub fn release_freed_memory() {
    // SAFETY: collecting has no preconditions; any thread may call it.
    unsafe { ffi::mi_collect(true) };
    // SAFETY: malloc_trim only returns free heap pages; it is thread-safe.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}
