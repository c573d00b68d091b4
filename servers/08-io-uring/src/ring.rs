//! The io_uring instance one loop owns: its two queues, the ring of buffers its receives land in,
//! and the count of operations the kernel still holds.
//!
//! An operation submitted to io_uring may point at memory of ours (a send's bytes, a read's
//! destination) and the kernel uses that memory until the operation's last completion, long after
//! the call that submitted it returned. That is what `unsafe` guards in server 08 (besides taking
//! ownership of an accepted descriptor), in three places: [`Ring::push_with_buffer`] (its two
//! callers, the send and the eventfd read, say why their buffer outlives the operation), the
//! provided buffers below (the kernel writes them, we read them only between a completion and
//! handing the buffer back), and `Drop`, which makes sure that no operation is left in flight when
//! the memory goes away, whatever path (an error, a panic) leads there.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, CancelBuilder, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use nix::libc;

/// The buffer group every receive of this ring draws from.
pub const BUF_GROUP: u16 = 0;
/// The user data of cancellations, whose own completions say nothing the loop needs.
pub const CANCEL: u64 = u64::MAX - 3;
/// Submission queue entries; a round that pushes more submits the excess early.
const ENTRIES: u32 = 1024;
/// Provided buffers per ring: enough for every connection that receives in one round on the
/// ladder's loads (64 connections), and a fixed cost (1 MiB) however many connections are held.
const BUFFERS: u16 = 256;
/// Bytes per provided buffer: one receive completion carries at most this much.
const BUF_SIZE: usize = 4096;

/// One loop's io_uring: queues, provided buffers, and what is still in flight.
pub struct Ring {
    /// The kernel's submission and completion queues.
    uring: IoUring,
    /// Where multishot receives put what arrives, whichever connection it is for; dropped by
    /// hand, after the kernel has let go of it.
    bufs: ManuallyDrop<Buffers>,
    /// Entries pushed while the submission queue was full, submitted at the next round.
    overflow: Vec<squeue::Entry>,
    /// Operations submitted whose last completion has not come yet (a multishot operation counts
    /// once, until its completion without `IORING_CQE_F_MORE`).
    in_flight: usize,
}

impl Ring {
    /// A ring with its provided buffers registered, or the reason io_uring cannot serve here.
    pub fn new() -> io::Result<Ring> {
        // One thread submits, and completions are delivered only when it asks for them: the
        // kernel then does the deferred work in batches, on our time, instead of interrupting.
        let uring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(ENTRIES * 4)
            .build(ENTRIES)
            .map_err(unavailable)?;
        let bufs = Buffers::new(BUFFERS, BUF_SIZE);
        // SAFETY: the ring of buffer descriptors lives in `bufs`, which this `Ring` owns and
        // frees only after unregistering it (`Drop` below).
        unsafe { uring.submitter().register_buf_ring_with_flags(bufs.ring.as_ptr() as u64, BUFFERS, BUF_GROUP, 0) }
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("io_uring lacks provided-buffer rings (Linux 6.0 or later needed): {e}"),
                )
            })?;
        Ok(Ring { uring, bufs: ManuallyDrop::new(bufs), overflow: Vec::new(), in_flight: 0 })
    }

    /// Queues an operation that points at no memory of ours: accept, poll, cancel, and receives
    /// into the provided buffers (the kernel picks one of ours, which outlive the ring). Safe to
    /// call only because this module is private and every caller passes such an entry; anything
    /// that carries a pointer goes through [`Ring::push_with_buffer`].
    pub fn push(&mut self, sqe: squeue::Entry) {
        // SAFETY: such an entry carries no pointer, or only into `self.bufs`, which outlives
        // every operation (see `Drop`).
        unsafe { self.push_with_buffer(sqe) }
    }

    /// Queues an operation; it is submitted at the next [`Ring::submit_and_wait`].
    ///
    /// # Safety
    /// Every buffer `sqe` points at must stay valid, and unmoved, until the operation's last
    /// completion has been taken by [`Ring::completions`].
    pub unsafe fn push_with_buffer(&mut self, sqe: squeue::Entry) {
        self.in_flight += 1;
        // SAFETY: the caller vouches for the buffers.
        if self.overflow.is_empty() && unsafe { self.uring.submission().push(&sqe) }.is_ok() {
            return;
        }
        self.overflow.push(sqe);
    }

    /// Submits everything queued in one `io_uring_enter`, which then sleeps until at least one
    /// completion is there or `timeout` has passed.
    pub fn submit_and_wait(&mut self, timeout: Duration) -> io::Result<()> {
        while !self.overflow.is_empty() {
            let mut sq = self.uring.submission();
            let room = sq.capacity() - sq.len();
            let n = room.min(self.overflow.len());
            // SAFETY: these entries were pushed with the same promise (`push_with_buffer`).
            let _ = unsafe { sq.push_multiple(&self.overflow[..n]) };
            drop(sq);
            self.overflow.drain(..n);
            if !self.overflow.is_empty() && !self.submit_or_busy(self.uring.submit())? {
                break;
            }
        }
        let ts = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&ts);
        self.submit_or_busy(self.uring.submitter().submit_with_args(1, &args)).map(drop)
    }

    /// Sorts what `io_uring_enter` returned: false when the kernel has completions it could not
    /// post yet (taking them is the cure), an error when the ring itself failed.
    fn submit_or_busy(&self, result: io::Result<usize>) -> io::Result<bool> {
        match result {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Moves every completion that has arrived into `into` (copied out, so that handling one may
    /// push new entries), and counts the operations that ended.
    pub fn completions(&mut self, into: &mut Vec<cqueue::Entry>) {
        for cqe in self.uring.completion() {
            if !cqueue::more(cqe.flags()) {
                self.in_flight -= 1;
            }
            into.push(cqe);
        }
    }

    /// True while the kernel holds an operation of this ring.
    pub fn busy(&self) -> bool {
        self.in_flight > 0
    }

    /// The `len` bytes a receive completion put in provided buffer `bid`. Valid until the buffer
    /// is handed back ([`Ring::recycle`] takes `&mut self`, so no slice from here outlives it).
    pub fn received(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.bufs.count && len <= self.bufs.size, "the kernel named a buffer we did not give it");
        // SAFETY: in bounds (checked above); the kernel wrote these bytes before posting the
        // completion that named `bid`, and will not touch the buffer until it is handed back.
        unsafe { std::slice::from_raw_parts(self.bufs.mem.as_ptr().add(bid as usize * self.bufs.size), len) }
    }

    /// Hands provided buffer `bid` back to the kernel for a later receive.
    pub fn recycle(&mut self, bid: u16) {
        self.bufs.give(bid);
    }
}

impl Drop for Ring {
    /// Cancels whatever is still in flight and waits (a second at most) for the kernel to let go,
    /// before the buffers those operations point at are freed. Only an early return (an error, a
    /// panic) gets here with anything in flight: a loop that stops cleanly has waited already.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        if self.busy() {
            self.push(opcode::AsyncCancel2::new(CancelBuilder::any()).build().user_data(CANCEL));
        }
        let mut done = Vec::new();
        while self.busy() && Instant::now() < deadline {
            if self.submit_and_wait(Duration::from_millis(100)).is_err() {
                break;
            }
            self.completions(&mut done);
            done.clear();
        }
        if self.busy() {
            // The kernel may still write into the buffers: better lost than reused.
            return;
        }
        let _ = self.uring.submitter().unregister_buf_ring(BUF_GROUP);
        // SAFETY: nothing is in flight and the buffers are unregistered; `bufs` is not used again.
        unsafe { ManuallyDrop::drop(&mut self.bufs) }
    }
}

/// A provided-buffer ring: `count` buffers of `size` bytes, and the ring of descriptors through
/// which the kernel takes them (at its head) and we give them back (at the tail).
struct Buffers {
    /// The descriptors, shared with the kernel; the tail is a field of the first one.
    ring: NonNull<BufRingEntry>,
    /// The buffers themselves, one allocation of `count * size` bytes.
    mem: NonNull<u8>,
    /// How many buffers (a power of two).
    count: u16,
    /// Bytes per buffer.
    size: usize,
    /// Our copy of the tail: where the next buffer handed back goes.
    tail: u16,
}

impl Buffers {
    /// Allocates the buffers and offers every one of them to the kernel.
    fn new(count: u16, size: usize) -> Buffers {
        assert!(count.is_power_of_two());
        let (ring_layout, mem_layout) = Buffers::layouts(count, size);
        // SAFETY: both layouts have a non-zero size.
        let (ring, mem) = unsafe { (alloc_zeroed(ring_layout), alloc_zeroed(mem_layout)) };
        let ring = NonNull::new(ring.cast()).unwrap_or_else(|| std::alloc::handle_alloc_error(ring_layout));
        let mem = NonNull::new(mem).unwrap_or_else(|| std::alloc::handle_alloc_error(mem_layout));
        let mut bufs = Buffers { ring, mem, count, size, tail: 0 };
        for bid in 0..count {
            bufs.give(bid);
        }
        bufs
    }

    /// The descriptors' layout (page-aligned, as the kernel requires) and the buffers'.
    fn layouts(count: u16, size: usize) -> (Layout, Layout) {
        let ring = Layout::from_size_align(count as usize * std::mem::size_of::<BufRingEntry>(), 4096);
        let mem = Layout::from_size_align(count as usize * size, 64);
        (ring.expect("a valid layout"), mem.expect("a valid layout"))
    }

    /// Puts buffer `bid` at the tail and publishes the new tail to the kernel.
    fn give(&mut self, bid: u16) {
        let slot = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `slot` is within the ring; the kernel reads descriptors only below the tail it
        // was last shown, so this one is ours to write until the store below.
        unsafe {
            let entry = &mut *self.ring.as_ptr().add(slot);
            entry.set_addr(self.mem.as_ptr().add(bid as usize * self.size) as u64);
            entry.set_len(self.size as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is a naturally aligned u16 inside the ring allocation, which the
        // kernel reads concurrently, hence the atomic; Release orders the descriptor before it.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.ring.as_ptr()).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        let (ring_layout, mem_layout) = Buffers::layouts(self.count, self.size);
        // SAFETY: allocated in `new` with these layouts; dropped only once unregistered.
        unsafe {
            dealloc(self.ring.as_ptr().cast(), ring_layout);
            dealloc(self.mem.as_ptr(), mem_layout);
        }
    }
}

/// Says, in one line, why io_uring cannot serve on this machine.
fn unavailable(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) => "io_uring is not permitted here (EPERM from io_uring_setup: a seccomp filter, as in many containers, or sysctl kernel.io_uring_disabled)",
        Some(libc::ENOSYS) => "this kernel has no io_uring (ENOSYS from io_uring_setup: it needs Linux 6.1 or later, built with io_uring)",
        Some(libc::EINVAL) => "this kernel's io_uring is too old for server 08 (EINVAL from io_uring_setup: it needs Linux 6.1 or later)",
        _ => return io::Error::new(e.kind(), format!("io_uring_setup failed: {e}")),
    };
    io::Error::new(io::ErrorKind::Unsupported, why)
}
