//! Transaction accounting from what the server confirms: CommandComplete tags, ErrorResponse,
//! and ReadyForQuery's transaction status.
//!
//! One server transaction counts once, when it ends:
//! - an explicit block (`BEGIN` … `COMMIT`/`ROLLBACK`) ends at its COMMIT or ROLLBACK tag (a
//!   COMMIT of a failed block reports `ROLLBACK`, so it counts as a rollback);
//! - statements outside a block run in an implicit transaction that ends at the next
//!   ReadyForQuery with status `I`: one transaction per Query message (a multi-statement Query
//!   is one transaction, as PostgreSQL runs it) or per extended-protocol Sync; it commits
//!   unless an error came first;
//! - `ROLLBACK TO SAVEPOINT` also reports `ROLLBACK`: while savepoints are open, a ROLLBACK tag
//!   is settled by the next ReadyForQuery (`T` means it was to a savepoint);
//! - `PREPARE TRANSACTION` ends the block without committing: counted in `transactions` only;
//! - a session that ends inside a block is rolled back by the server: one rollback.
//!
//! Envoy counts differently (each statement outside BEGIN as its own transaction, and a
//! transaction per BEGIN whether or not it ends); see the README.

use legate_codecs::postgres::backend::{CommandKind, TransactionStatus};

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Rollback,
    /// PREPARE TRANSACTION: ended, neither committed nor rolled back yet.
    Prepared,
}

#[derive(Debug, Default)]
pub struct TxTracker {
    in_block: bool,
    /// Statements (or an error) since the last transaction ended.
    work: bool,
    failed: bool,
    savepoints: u32,
    /// A ROLLBACK tag while savepoints were open: full rollback or to a savepoint.
    ambiguous_rollback: bool,
}

impl TxTracker {
    pub fn on_command(&mut self, kind: CommandKind) -> Option<Outcome> {
        match kind {
            CommandKind::Begin | CommandKind::StartTransaction => {
                self.in_block = true;
                self.work = true;
                None
            }
            CommandKind::Commit if self.in_block => Some(self.end(Outcome::Commit)),
            CommandKind::Rollback if self.in_block && self.savepoints > 0 => {
                self.ambiguous_rollback = true;
                None
            }
            CommandKind::Rollback if self.in_block => Some(self.end(Outcome::Rollback)),
            CommandKind::PrepareTransaction if self.in_block => Some(self.end(Outcome::Prepared)),
            CommandKind::Savepoint => {
                self.savepoints += 1;
                self.work = true;
                None
            }
            CommandKind::Release => {
                self.savepoints = self.savepoints.saturating_sub(1);
                self.work = true;
                None
            }
            _ => {
                self.work = true;
                None
            }
        }
    }

    pub fn on_error(&mut self) {
        self.work = true;
        self.failed = true;
    }

    pub fn on_ready(&mut self, status: TransactionStatus) -> Option<Outcome> {
        match status {
            TransactionStatus::Idle => {
                let out = if self.in_block {
                    // The block ended without a tag that settled it: the ambiguous ROLLBACK
                    // was the full one, or the server ended the block itself.
                    Some(if self.ambiguous_rollback || self.failed { Outcome::Rollback } else { Outcome::Commit })
                } else if self.work {
                    Some(if self.failed { Outcome::Rollback } else { Outcome::Commit })
                } else {
                    None
                };
                *self = TxTracker::default();
                out
            }
            TransactionStatus::InBlock | TransactionStatus::Failed => {
                self.in_block = true;
                self.ambiguous_rollback = false;
                None
            }
        }
    }

    /// The session ended: the server rolls back an open block.
    pub fn on_session_end(&mut self) -> Option<Outcome> {
        let out = self.in_block.then_some(Outcome::Rollback);
        *self = TxTracker::default();
        out
    }

    fn end(&mut self, out: Outcome) -> Outcome {
        *self = TxTracker::default();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandKind as K;
    use Outcome::*;
    use TransactionStatus::*;

    /// Server events: `C(kind)` a CommandComplete, `E` an ErrorResponse, `Z(status)` a
    /// ReadyForQuery.
    enum Ev {
        C(CommandKind),
        E,
        Z(TransactionStatus),
    }

    /// Replays server events; returns the outcomes in order.
    fn run(evs: &[Ev]) -> Vec<Outcome> {
        let mut t = TxTracker::default();
        let mut out = Vec::new();
        for e in evs {
            let o = match e {
                Ev::C(k) => t.on_command(*k),
                Ev::E => {
                    t.on_error();
                    None
                }
                Ev::Z(s) => t.on_ready(*s),
            };
            out.extend(o);
        }
        out
    }

    #[test]
    fn autocommit_statements_are_one_transaction_each_query() {
        use Ev::*;
        assert_eq!(run(&[C(K::Select), Z(Idle), C(K::Insert), Z(Idle)]), vec![Commit, Commit]);
        // "INSERT ...; SELECT ..." in one Query: one implicit transaction.
        assert_eq!(run(&[C(K::Insert), C(K::Select), Z(Idle)]), vec![Commit]);
        // Parse/Describe/Sync with no Execute: no transaction.
        assert_eq!(run(&[Z(Idle)]), vec![]);
    }

    #[test]
    fn explicit_blocks_end_at_their_tag() {
        use Ev::*;
        let tpcb = [
            C(K::Begin),
            Z(InBlock),
            C(K::Update),
            Z(InBlock),
            C(K::Select),
            Z(InBlock),
            C(K::Insert),
            Z(InBlock),
            C(K::Commit),
            Z(Idle),
        ];
        assert_eq!(run(&tpcb), vec![Commit]);
        // "BEGIN; INSERT; COMMIT; INSERT" in one Query: two transactions.
        assert_eq!(run(&[C(K::Begin), C(K::Insert), C(K::Commit), C(K::Insert), Z(Idle)]), vec![Commit, Commit]);
    }

    #[test]
    fn failures_roll_back() {
        use Ev::*;
        // BEGIN; INSERT; bad statement; ROLLBACK.
        assert_eq!(
            run(&[C(K::Begin), Z(InBlock), C(K::Insert), Z(InBlock), E, Z(Failed), C(K::Rollback), Z(Idle)]),
            vec![Rollback]
        );
        // COMMIT of a failed block reports ROLLBACK.
        assert_eq!(run(&[C(K::Begin), Z(InBlock), E, Z(Failed), C(K::Rollback), Z(Idle)]), vec![Rollback]);
        // An error in an implicit transaction rolls it back.
        assert_eq!(run(&[C(K::Select), E, Z(Idle)]), vec![Rollback]);
    }

    #[test]
    fn savepoint_rollbacks_do_not_end_the_block() {
        use Ev::*;
        let evs = [
            C(K::Begin),
            Z(InBlock),
            C(K::Savepoint),
            Z(InBlock),
            E,
            Z(Failed),
            C(K::Rollback), // ROLLBACK TO SAVEPOINT
            Z(InBlock),
            C(K::Insert),
            Z(InBlock),
            C(K::Commit),
            Z(Idle),
        ];
        assert_eq!(run(&evs), vec![Commit]);
        // A full ROLLBACK with a savepoint open is settled by ReadyForQuery 'I'.
        assert_eq!(run(&[C(K::Begin), C(K::Savepoint), Z(InBlock), C(K::Rollback), Z(Idle)]), vec![Rollback]);
    }

    #[test]
    fn a_session_ending_in_a_block_is_a_rollback() {
        let mut t = TxTracker::default();
        t.on_command(K::Begin);
        t.on_ready(InBlock);
        assert_eq!(t.on_session_end(), Some(Rollback));
        assert_eq!(t.on_session_end(), None);
    }
}
