//! The JVM engines' heap (ZooKeeper, Kafka): `spec.<engine>.heap`, else half the memory limit.

use firecamp_core::spec::Resources;
use firecamp_core::{ServiceSpec, ValidationErrors, quantity};

use crate::plan::memory_limit_mib;

/// The heap in MiB: `heap` when given, else half the memory limit (1 GiB without one).
pub fn heap_mib(heap: Option<&str>, resources: &Resources) -> u128 {
    heap.and_then(|h| quantity::parse(h).ok()).map(|q| q.mebibytes()).unwrap_or_else(|| memory_limit_mib(resources).unwrap_or(1024) / 2)
}

/// `heap` (at `field`) is a quantity of at least `min_mib` and below the memory limit.
pub fn validate_heap(field: &str, heap: Option<&str>, min_mib: u128, spec: &ServiceSpec, errs: &mut ValidationErrors) {
    let Some(h) = heap else { return };
    match quantity::parse(h) {
        Err(e) => errs.push(field, e),
        Ok(q) if q.mebibytes() < min_mib => errs.push(field, format!("must be at least {min_mib}Mi")),
        Ok(q) => {
            let limit = spec.resources.limits.memory.as_deref().and_then(|m| quantity::parse(m).ok());
            if limit.is_some_and(|l| q >= l) {
                errs.push(field, "must be below spec.resources.limits.memory (the JVM needs memory beyond its heap)");
            }
        }
    }
}
