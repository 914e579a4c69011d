//! The GPU working-set limit as the Metal device reports it (macOS only).

use objc2_metal::{MTLCopyAllDevices, MTLDevice};

/// `recommendedMaxWorkingSetSize` of the largest Metal device (Apple Silicon has one): the
/// memory the GPU can use without hurting performance, raised along with
/// `iogpu.wired_limit_mb`. `None` where Metal has no device (a VM without a GPU).
pub(crate) fn recommended_working_set() -> Option<u64> {
    MTLCopyAllDevices()
        .iter()
        .map(|d| d.recommendedMaxWorkingSetSize())
        .filter(|&b| b > 0)
        .max()
}
