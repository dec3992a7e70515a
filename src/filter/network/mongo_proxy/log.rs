//! The filter's `access_log`: one JSON object per message, in Envoy's envelope
//! `{"time": "...", "message": {...}, "upstream_host": "ip:port"|"-"}`. Legate's `message`
//! names the opcode, ids, flags and the facts it decoded; it does not copy documents into the
//! log (Envoy prints OP_QUERY's query document).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;

use parking_lot::Mutex;
use serde_json::Value;

pub struct MongoLog {
    file: Mutex<File>,
}

impl MongoLog {
    pub fn open(path: &str) -> std::io::Result<MongoLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(MongoLog { file: Mutex::new(file) })
    }

    pub fn write(&self, message: &Value, upstream: Option<SocketAddr>) {
        // Envoy's AccessLogDateTimeFormatter: UTC with milliseconds.
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let host = upstream.map_or_else(|| "-".to_string(), |a| a.to_string());
        let line = format!("{{\"time\": \"{time}\", \"message\": {message}, \"upstream_host\": \"{host}\"}}\n");
        // One write per line on an O_APPEND file: lines from connections never interleave.
        let _ = self.file.lock().write_all(line.as_bytes());
    }
}
