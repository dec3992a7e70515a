//! CommandComplete tags: `SELECT 5`, `INSERT 0 3`, `UPDATE 2`, `BEGIN`, `COMMIT`, ...
//! (the list is in the CommandComplete entry of protocol-message-formats).

/// What the server says it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    Copy,
    Fetch,
    Move,
    /// `BEGIN` (also what `START TRANSACTION` reports).
    Begin,
    StartTransaction,
    /// `COMMIT` (also `END`). A COMMIT of a failed transaction reports `ROLLBACK`.
    Commit,
    /// `ROLLBACK` (also `ABORT` and `ROLLBACK TO SAVEPOINT`).
    Rollback,
    Savepoint,
    Release,
    PrepareTransaction,
    CommitPrepared,
    RollbackPrepared,
    /// Any other command (`CREATE TABLE`, `SET`, `SHOW`, ...).
    Other,
}

/// A parsed CommandComplete tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandTag<'a> {
    /// The tag as sent.
    pub raw: &'a [u8],
    pub kind: CommandKind,
    /// The row count, for the commands that report one.
    pub rows: Option<u64>,
}

impl<'a> CommandTag<'a> {
    pub fn parse(raw: &'a [u8]) -> CommandTag<'a> {
        let mut words = raw.split(|b| *b == b' ');
        let first = words.next().unwrap_or_default();
        let second = words.next();
        let third = words.next();
        let num = |w: Option<&[u8]>| w.and_then(|w| std::str::from_utf8(w).ok()).and_then(|s| s.parse::<u64>().ok());
        let (kind, rows) = match first {
            b"SELECT" => (CommandKind::Select, num(second)),
            // `INSERT oid rows`.
            b"INSERT" => (CommandKind::Insert, num(third)),
            b"UPDATE" => (CommandKind::Update, num(second)),
            b"DELETE" => (CommandKind::Delete, num(second)),
            b"MERGE" => (CommandKind::Merge, num(second)),
            b"COPY" => (CommandKind::Copy, num(second)),
            b"FETCH" => (CommandKind::Fetch, num(second)),
            b"MOVE" => (CommandKind::Move, num(second)),
            _ => (Self::kind_of_utility(raw), None),
        };
        // `SELECT` with a count is a query; anything that merely starts with the word is not.
        let kind = match (kind, rows) {
            (CommandKind::Select | CommandKind::Insert | CommandKind::Update | CommandKind::Delete, None) => {
                CommandKind::Other
            }
            (k, _) => k,
        };
        CommandTag { raw, kind, rows }
    }

    fn kind_of_utility(raw: &[u8]) -> CommandKind {
        match raw {
            b"BEGIN" => CommandKind::Begin,
            b"START TRANSACTION" => CommandKind::StartTransaction,
            b"COMMIT" => CommandKind::Commit,
            b"ROLLBACK" => CommandKind::Rollback,
            b"SAVEPOINT" => CommandKind::Savepoint,
            b"RELEASE" => CommandKind::Release,
            b"PREPARE TRANSACTION" => CommandKind::PrepareTransaction,
            b"COMMIT PREPARED" => CommandKind::CommitPrepared,
            b"ROLLBACK PREPARED" => CommandKind::RollbackPrepared,
            _ => CommandKind::Other,
        }
    }
}
