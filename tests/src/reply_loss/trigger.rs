//! What the proxy sees a client execute, and which execution a test picks to lose its reply.

use std::fmt;

/// Which execution loses its reply: every condition must hold, and the `nth` matching execution
/// (counted over all connections, from 1) is the one.
#[derive(Debug, Clone)]
pub struct Trigger {
    fragments: Vec<String>,
    param: Option<Vec<u8>>,
    pub(super) nth: usize,
    pub(super) after: Option<Box<Trigger>>,
}

impl Trigger {
    /// An execution whose statement text contains `fragment` (ASCII case-insensitive).
    pub fn statement_contains(fragment: &str) -> Trigger {
        Trigger {
            fragments: vec![fragment.to_ascii_lowercase()],
            param: None,
            nth: 1,
            after: None,
        }
    }

    /// An execution with a bound parameter whose raw value is exactly `value` (a text or string
    /// parameter, as the driver sends it).
    pub fn param_equals(value: &str) -> Trigger {
        Trigger {
            fragments: Vec::new(),
            param: Some(value.as_bytes().to_vec()),
            nth: 1,
            after: None,
        }
    }

    /// Also requires the statement text to contain `fragment` (ASCII case-insensitive).
    pub fn and_contains(mut self, fragment: &str) -> Trigger {
        self.fragments.push(fragment.to_ascii_lowercase());
        self
    }

    /// Also requires a bound parameter equal to `value`.
    pub fn and_param(mut self, value: &str) -> Trigger {
        self.param = Some(value.as_bytes().to_vec());
        self
    }

    /// The `n`th matching execution (from 1) fires, not the first.
    pub fn nth(mut self, n: usize) -> Trigger {
        assert!(n >= 1, "executions are counted from 1");
        self.nth = n;
        self
    }

    /// Only counts executions on a connection that has already executed one matching `earlier`
    /// since arming (its `nth` is ignored): "the COMMIT after the APPLIED insert", when other
    /// transactions commit too.
    pub fn after(mut self, earlier: Trigger) -> Trigger {
        self.after = Some(Box::new(earlier));
        self
    }

    pub(super) fn matches(&self, execution: &Execution) -> bool {
        let statement = execution.statement.to_ascii_lowercase();
        self.fragments
            .iter()
            .all(|f| statement.contains(f.as_str()))
            && self.param.as_ref().is_none_or(|wanted| {
                execution
                    .params
                    .iter()
                    .any(|p| p.as_deref() == Some(wanted.as_slice()))
            })
    }
}

/// One statement a client had the server execute, as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// The proxy's number for the client connection, from 1 in accept order.
    pub connection: u64,
    /// Whether it ran as a prepared statement (PostgreSQL Bind/Execute, MySQL COM_STMT_EXECUTE)
    /// rather than as a simple query (PostgreSQL 'Q', MySQL COM_QUERY).
    pub prepared: bool,
    pub statement: String,
    /// The bound values' raw bytes (`None` for SQL NULL), as sent: text or binary encoding.
    pub params: Vec<Option<Vec<u8>>>,
}

impl fmt::Display for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.prepared { "prepared" } else { "simple" };
        write!(f, "#{} {kind} {:?}", self.connection, self.statement)?;
        if !self.params.is_empty() {
            let params: Vec<String> = self
                .params
                .iter()
                .map(|p| match p {
                    None => "NULL".to_owned(),
                    Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
                })
                .collect();
            write!(f, " [{}]", params.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_needs_every_fragment_and_the_param() {
        let execution = Execution {
            connection: 1,
            prepared: true,
            statement: "INSERT INTO audit (state) VALUES ($1)".to_owned(),
            params: vec![Some(b"APPLIED".to_vec()), None],
        };
        assert!(Trigger::statement_contains("insert into").matches(&execution));
        assert!(Trigger::param_equals("APPLIED").matches(&execution));
        assert!(
            Trigger::statement_contains("INSERT")
                .and_contains("audit")
                .and_param("APPLIED")
                .matches(&execution)
        );
        assert!(
            !Trigger::statement_contains("INSERT")
                .and_param("FAILED")
                .matches(&execution)
        );
        assert!(!Trigger::statement_contains("COMMIT").matches(&execution));
    }
}
