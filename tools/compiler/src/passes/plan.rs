//! Arena planning: offsets over tensor liveness on the widest configuration (the runtime
//! writer's planner), checked against the liveness lower bound.

use edgeslim_runtime::writer::{MemoryPlan, ModelDef, plan};

/// Run the pass.
pub fn run(def: &ModelDef) -> MemoryPlan {
    plan(def)
}
