//! Envoy-compatible access logging: the lines Envoy 1.40 writes, character for character.
//!
//! Configuration time: build a [`Formatter`] from the logger's `log_format`
//! ([`Formatter::parse_text`] for `text_format`/`text_format_source`/`format`,
//! [`Formatter::parse_json`] for `json_format`, [`Formatter::envoy_default`] when no format is
//! given) and open an [`AccessLog`] on its [`SinkTarget`]. Errors are Envoy's own messages
//! (`Not supported field in StreamInfo: FOO`, ...), so config rejection reads the same.
//!
//! Run time: fill a [`StreamInfo`] for each finished connection or stream and call
//! [`AccessLog::log`]. Nothing is parsed on that path.
//!
//! - [`stream_info`]: the data a line is made of.
//! - [`response_flags`]: `%RESPONSE_FLAGS%`, printed in the order flags were set.
//! - [`format`](mod@format): the format-string parser and [`Formatter`].
//! - `json`: `json_format` rendering (typed values, sorted keys, `omit_empty_values`).
//! - [`sink`]: file / stdout / stderr writers and `/reopen_logs`.
//! - `operator`: what each operator prints, and which ones print `-` because [`StreamInfo`]
//!   cannot answer them yet; `syntax`: the names Envoy 1.40 accepts and its error texts.
//! - `time_fmt`: `%START_TIME(...)%` (Envoy's `%f`/`%s` layer over cctz and glibc strftime).
//!
//! Every behaviour here was checked against a running Envoy 1.40 (see the `fixtures` tests).

pub mod format;
mod json;
mod operator;
pub mod response_flags;
pub mod sink;
pub mod stream_info;
mod syntax;
mod time_fmt;

#[cfg(test)]
mod fixtures;

pub use format::{Formatter, DEFAULT_FORMAT};
pub use response_flags::ResponseFlags;
pub use sink::{AccessLog, SinkTarget};
pub use stream_info::StreamInfo;
