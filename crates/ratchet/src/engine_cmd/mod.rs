//! The engine commands: init, plan, start, complete, backfill, validate, abort, grants,
//! migrate, status, the operator's pause, resume, set and events, and `config`, which
//! shows the settings they run with.
//!
//! - `args`: the clap argument structs, shared option groups and `parse_duration`;
//! - `settings`: the `[engine]` table of `ratchet.toml` and the precedence flag >
//!   `[engine]` > `ratchet_engine::Config::default()`;
//! - `monitor_settings`: the `[monitor]` table and the monitor flags, the same way;
//! - `commands`: one function per command, from arguments to the engine call;
//! - `render`: what the commands print (plans, status, outcomes, settings).

mod args;
mod commands;
mod flags;
mod gate_settings;
mod monitor_settings;
mod observe;
pub(crate) mod render;
mod settings;
mod watch;

use ratchet_engine::EngineError;

pub use args::{
    parse_duration, BackfillCmdArgs, CompleteArgs, ConfigArgs, ConnArgs, DoctorArgs, EventsArgs,
    MigrateArgs, PauseArgs, PlanArgs, SetArgs, StartArgs, StatusArgs, ValidateArgs,
};
pub use commands::{
    abort, backfill, complete, doctor, events, grants, init, migrate, pause, plan, resume, set,
    show_config, start, status, validate,
};
pub use flags::{
    clients, flags, freeze, print_url, unfreeze, ClientsArgs, FlagsArgs, FreezeArgs, UrlArgs,
};
pub use render::print_plan;

/// 1 for refusals (gates, validations, another runner), 2 for everything else: usage,
/// a bad migration file (its shape, its SQL, or what it refers to), configuration,
/// database errors.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<EngineError>() {
        Some(engine) if engine.is_refusal() => 1,
        _ => 2,
    }
}
