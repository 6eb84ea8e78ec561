//! The builder's `.baseline(up_to, reason)`: recorded at a start, before the run, for a database
//! whose schema exists but has no history (see `Engine::baseline`).

use flamingock_core::engine::{BaselineError, BaselineRequest, Engine};
use flamingock_core::{ChangeUnit, Error};

/// Records the baseline unless every unit in range already has history; a range with history
/// in only some of its units is refused.
pub(crate) async fn on_start(
    engine: &Engine,
    units: &[&'static ChangeUnit],
    up_to: String,
    reason: String,
    app_name: Option<String>,
) -> Result<(), Error> {
    let operator = ["USER", "USERNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .or(app_name)
        .unwrap_or_else(|| "flamingock".to_owned());
    let request = BaselineRequest {
        up_to,
        operator,
        reason,
        once: true,
    };
    match engine.baseline(units.iter().copied(), &request).await {
        Ok(_) => Ok(()),
        Err(BaselineError::Engine(error)) => Err(error),
        Err(refused) => Err(Error::Config(format!("baseline: {refused}"))),
    }
}
