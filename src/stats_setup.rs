//! Applies `stats_config` to the store: the user's `stats_tags` after Envoy's default rules
//! (or instead of them with `use_all_default_tags: false`).

use crate::config::bootstrap::StatsConfig;
use crate::stats::{Store, TagRule};

/// Installs the tag rules; a rule whose regex does not compile is reported (config validation
/// already checked the syntax, so this only guards against dialect differences).
pub fn apply_tag_rules(store: &Store, cfg: &StatsConfig) -> Result<(), String> {
    let mut rules = Vec::new();
    for t in &cfg.stats_tags {
        let rule = TagRule::from_specifier(&t.tag_name, t.regex.as_deref(), t.fixed_value.as_deref())
            .map_err(|e| format!("stats_config.stats_tags '{}': {e}", t.tag_name))?;
        rules.extend(rule);
    }
    store.set_tag_config(cfg.use_all_default_tags, rules);
    Ok(())
}
