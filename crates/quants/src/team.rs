//! A team of worker threads that stay awake between the weight products of a decode step.
//!
//! A decoded token of a small dense model is ~120 mat-vecs of 10–100 µs each, separated by a
//! few µs of norms and RoPE. Run on rayon, each product has to wake the pool's other threads
//! (rayon parks idle workers after a short spin), and the second thread joins late or not at
//! all: on SmolLM2 decode ran at 0.83–0.84× the team's speed (`localglm bench glm`,
//! `LOCALGLM_TEAM=off` against on, same run). The team's workers instead spin on an epoch counter for [`SPIN`] after their last
//! job, then park; the calling thread works too, and tasks are claimed from one atomic
//! counter, so an uneven split balances itself (a VM's second core may be slow). This is what
//! llama.cpp's CPU thread pool does between the nodes of a graph.
//!
//! The team has `rayon::current_num_threads() − 1` workers, fixed at first use. [`for_each`]
//! falls back to rayon when the team is already running a job (another thread's product),
//! when called from a team thread, or when there is no worker. It may be called from a rayon
//! worker (the GLM pass runs on one) but not from inside a parallel loop: products that run
//! side by side (a layer's q/k/v, the routed experts of `matvec_indexed`) are one job of all
//! their rows' tasks. A decode step uses nothing else: while rayon's threads ran the experts,
//! the spinning worker took a core from them (GLM decode at 0.34 of the bandwidth bound
//! against 0.42–0.45 on the team). Results do not depend on which thread runs a task.

use rayon::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// The job of one epoch: `n` tasks of `task`, claimed through `next`.
struct Job {
    task: *const (dyn Fn(usize) + Sync),
    n: usize,
}

// WORKAROUND: a raw pointer is not `Send`; the pointee is `Sync`, and `run` keeps it alive
// until every worker has finished with it (see there).
#[allow(unsafe_code)]
unsafe impl Send for Job {}

struct Shared {
    /// Bumped once per job; workers wait for it to change.
    epoch: AtomicUsize,
    job: Mutex<Job>,
    /// The next task to claim.
    next: AtomicUsize,
    /// Workers still inside the current job.
    active: AtomicUsize,
    /// Workers parked (or about to park) on `wake`.
    parked: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    /// A task of the current job panicked on a worker.
    panicked: AtomicBool,
    /// The epoch after which idle workers were asked to park at once ([`release`]).
    released: AtomicUsize,
}

struct Team {
    workers: usize,
    shared: &'static Shared,
    /// A job is being run (one caller at a time).
    busy: AtomicBool,
}

thread_local! {
    static IN_TEAM: Cell<bool> = const { Cell::new(false) };
}

static TEAM: OnceLock<Team> = OnceLock::new();

fn team() -> &'static Team {
    TEAM.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            epoch: AtomicUsize::new(0),
            job: Mutex::new(Job {
                task: &|_: usize| {},
                n: 0,
            }),
            next: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            panicked: AtomicBool::new(false),
            released: AtomicUsize::new(usize::MAX),
        }));
        let want = rayon::current_num_threads().saturating_sub(1);
        let mut workers = 0;
        for i in 0..want {
            let spawned = std::thread::Builder::new()
                .name(format!("localglm-team-{i}"))
                .spawn(move || worker(shared));
            // Without a thread the team is smaller; with none, everything runs on rayon.
            workers += usize::from(spawned.is_ok());
        }
        Team {
            workers,
            shared,
            busy: AtomicBool::new(false),
        }
    })
}

fn worker(s: &'static Shared) {
    IN_TEAM.with(|t| t.set(true));
    let mut seen = 0usize;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while s.epoch.load(Ordering::Acquire) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            let asked = spins.is_multiple_of(64) && s.released.load(Ordering::Relaxed) == seen;
            if asked || (spins.is_multiple_of(1024) && start.elapsed() > SPIN) {
                park(s, seen);
            }
        }
        seen = s.epoch.load(Ordering::Acquire);
        let (task, n) = {
            let job = s.job.lock().unwrap_or_else(|e| e.into_inner());
            (job.task, job.n)
        };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
            let i = s.next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            // WORKAROUND: dereferencing the job's pointer: `run` does not return (so the
            // closure stays alive) until this worker has left the job (`active` below).
            #[allow(unsafe_code)]
            unsafe {
                (*task)(i)
            };
        }));
        if ran.is_err() {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.active.fetch_sub(1, Ordering::Release);
    }
}

/// Parks until the epoch moves past `seen`.
fn park(s: &Shared, seen: usize) {
    let mut guard = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
    s.parked.fetch_add(1, Ordering::SeqCst);
    while s.epoch.load(Ordering::SeqCst) == seen {
        guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
    s.parked.fetch_sub(1, Ordering::SeqCst);
}

/// Asks the team's idle workers to park now rather than spin out [`SPIN`]: called before work
/// that runs on rayon's threads (a prefill's batched products), which the spinning workers
/// would otherwise take cores from (prefill of a GLM mix 5 % faster with the team off before
/// this). The next job wakes them as usual.
pub fn release() {
    if let Some(t) = TEAM.get() {
        let s = t.shared;
        s.released
            .store(s.epoch.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Runs `f` with this thread's products on rayon, not the team: for work that is itself one
/// task of a rayon loop (a prefill's experts side by side), where waking the team would put
/// three threads on two cores.
pub fn on_rayon<R>(f: impl FnOnce() -> R) -> R {
    let was = IN_TEAM.with(|c| c.replace(true));
    let r = f();
    IN_TEAM.with(|c| c.set(was));
    r
}

/// `LOCALGLM_TEAM=off` runs every product on rayon instead (to measure what the team buys).
/// Read once per process.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("LOCALGLM_TEAM").map_or(true, |v| v != "off"))
}

/// Runs `task(i)` for every `i < n`, in parallel (the calling thread included).
pub fn run(n: usize, task: &(dyn Fn(usize) + Sync)) {
    let nested = IN_TEAM.with(|c| c.get());
    let t = (n >= 2 && enabled() && !nested).then(team);
    let Some(t) = t.filter(|t| t.workers > 0 && !t.busy.swap(true, Ordering::Acquire)) else {
        (0..n).into_par_iter().for_each(task);
        return;
    };
    let s = t.shared;
    {
        let mut job = s.job.lock().unwrap_or_else(|e| e.into_inner());
        // WORKAROUND: the job outlives this borrow only as a pointer that no worker uses
        // after `active` reaches 0, which this function waits for before returning.
        #[allow(unsafe_code)]
        let erased: *const (dyn Fn(usize) + Sync + 'static) = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), _>(task as *const _)
        };
        job.task = erased;
        job.n = n;
    }
    s.next.store(0, Ordering::Relaxed);
    s.panicked.store(false, Ordering::Relaxed);
    s.active.store(t.workers, Ordering::Relaxed);
    s.epoch.fetch_add(1, Ordering::SeqCst);
    if s.parked.load(Ordering::SeqCst) > 0 {
        let _guard = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
        s.wake.notify_all();
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        task(i);
    }));
    while s.active.load(Ordering::Acquire) > 0 {
        std::hint::spin_loop();
    }
    let theirs = s.panicked.load(Ordering::Relaxed);
    t.busy.store(false, Ordering::Release);
    if let Err(p) = mine {
        std::panic::resume_unwind(p);
    }
    assert!(
        !theirs,
        "a task of a parallel product panicked on a team thread"
    );
}

/// Runs `f` on every item in parallel (see the module docs for where).
pub fn for_each<T: Send>(items: Vec<T>, f: impl Fn(T) + Sync) {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    run(slots.len(), &|i| {
        let item = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(item) = item {
            f(item)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task runs exactly once, over many jobs in a row (workers spinning) and after a
    /// pause longer than the spin (workers parked and woken).
    #[test]
    fn every_task_runs_once_spinning_and_after_parking() {
        for round in 0..200 {
            let n = 1 + round % 37;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            run(n, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "round {round}"
            );
            if round == 100 {
                std::thread::sleep(SPIN * 3);
            }
        }
    }

    /// Two threads submitting at once: one runs on the team, the other on rayon; both complete.
    #[test]
    fn concurrent_callers_both_complete() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    for _ in 0..100 {
                        for_each((0..50).collect(), |i: usize| {
                            total.fetch_add(i, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 2 * 100 * (49 * 50 / 2));
    }

    /// A panicking task reaches the caller, and the team keeps working afterwards.
    #[test]
    fn a_panicking_task_reaches_the_caller() {
        let r = std::panic::catch_unwind(|| {
            run(64, &|i| {
                if i == 40 {
                    panic!("task 40");
                }
            })
        });
        assert!(r.is_err());
        let hits = AtomicUsize::new(0);
        run(64, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 64);
    }
}
