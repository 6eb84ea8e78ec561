// The context, a dependency and the transaction together; `Self` in a parameter type; the
// wrapper really resolves each parameter and calls the method.
use std::sync::Mutex;

use flamingock::prelude::*;

pub struct Config {
    pub greeting: String,
}

#[derive(Default)]
pub struct Audit {
    seen: Mutex<Vec<String>>,
}

pub static CALLS: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[change_unit(id = "mixed", order = "4", author = "ana")]
impl Audit {
    #[execution]
    async fn execute(
        &self,
        ctx: &ChangeContext,
        config: &Config,
        tx: &mut String,
        _same: &Self,
    ) -> Result<(), std::io::Error> {
        tx.push_str(" + changed");
        let line = format!("{} {} {}", config.greeting, ctx.change_id, ctx.attempt);
        self.seen.lock().expect("not poisoned").push(line.clone());
        CALLS.lock().expect("not poisoned").push(line);
        Ok(())
    }
}

fn main() {
    let unit = flamingock::ChangeUnit::registered()
        .find(|unit| unit.id == "mixed")
        .expect("the unit registers itself");
    let params = (unit.execution.params)();
    let written: Vec<_> = params.iter().map(|p| p.written_type).collect();
    assert_eq!(
        written,
        ["&ChangeContext", "&Config", "&mut String", "&Self"]
    );

    let ctx = ChangeContext {
        change_id: "mixed".into(),
        execution_id: "run-1".into(),
        attempt: 2,
        stage: "default".into(),
        target_system: "default".into(),
        runner_id: "runner".into(),
    };
    let mut deps = flamingock::Dependencies::new();
    deps.insert(Config {
        greeting: "hello".into(),
    });
    deps.insert(Audit::default());
    let mut tx = String::from("tx");
    let scope = flamingock::__private::Scope::new(&ctx, &deps, &deps, Some(&mut tx));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime
        .block_on((unit.execution.call)(scope))
        .expect("the method succeeds");
    assert_eq!(tx, "tx + changed");
    assert_eq!(*CALLS.lock().expect("not poisoned"), ["hello mixed 2"]);
}
