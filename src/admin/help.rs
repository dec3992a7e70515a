//! `/help` (also the body of every 404) and the HTML home page `/`, both generated from
//! `table::HANDLERS` in Envoy's layouts: `  /path (POST): text` with `      param: help` lines,
//! and Envoy's `home-table` page with a link per GET endpoint and a form per endpoint that
//! takes parameters or needs POST.

use std::fmt::Write;

use super::table::{Handler, ParamKind, HANDLERS};
use super::{AdminRequest, AdminState, Query, Reply, HTML};

/// `admin commands are:` and one entry per endpoint.
pub(crate) fn help_text() -> String {
    help_text_for(HANDLERS)
}

fn help_text_for(handlers: &[Handler]) -> String {
    let mut s = String::from("admin commands are:\n");
    for h in handlers {
        let post = if h.mutates { " (POST)" } else { "" };
        let _ = writeln!(s, "  {}{post}: {}", h.path, h.help);
        for p in h.params {
            let _ = write!(s, "      {}: {}", p.name, p.help);
            if let ParamKind::Choice(choices) = p.kind {
                let _ = write!(s, "; One of ({})", choices.join(", "));
            }
            s.push('\n');
        }
    }
    s
}

/// `GET /help`.
pub(crate) fn help(_state: &AdminState, _req: &AdminRequest) -> Reply {
    Reply::text(help_text())
}

/// `GET /`.
pub(crate) fn home(_state: &AdminState, req: &AdminRequest) -> Reply {
    Reply::new(200, HTML, home_page(&req.params))
}

const HEAD: &str = "<!DOCTYPE html>
<html lang='en'>
<head>

  <title>Legate Admin</title>
<style>

.home-table {
  font-family: sans-serif;
  font-size: medium;
  border-collapse: collapse;
  border-spacing: 0;
}

.home-data {
  text-align: left;
  padding: 4px;
}

.home-form {
  margin-bottom: 0;
}

.button-as-link {
  background: none!important;
  border: none;
  padding: 0!important;
  font-family: sans-serif;
  font-size: medium;
  color: #069;
  text-decoration: underline;
  cursor: pointer;
}

.gray {
  background-color: #dddddd;
}

.vert-space {
  height: 4px;
}

.option {
  padding-bottom: 4px;
  padding-top: 4px;
  padding-right: 4px;
  padding-left: 20px;
  text-align: right;
}

</style>
</head>
<body>

  <table class='home-table'>
    <thead>
      <tr>
        <th class='home-data'>Command</th>
        <th class='home-data'>Description</th>
      </tr>
    </thead>
    <tbody>
";

const TAIL: &str = "
    </tbody>
  </table>
</body>
</html>
";

/// The home page. `query` preselects enum choices, as Envoy's does.
pub(crate) fn home_page(query: &Query) -> String {
    let mut s = String::from(HEAD);
    // Rows alternate white and gray; `/` itself is not listed.
    for (row, (index, h)) in HANDLERS.iter().enumerate().filter(|(_, h)| h.path != "/").enumerate() {
        let gray = if row % 2 == 1 { " class='gray'" } else { "" };
        let url = h.path.trim_start_matches('/');
        let help = sanitize(h.help);
        s.push_str("\n<tr class='vert-space'><td></td><td></td></tr>\n");
        if h.params.is_empty() && !h.mutates {
            let _ = write!(
                s,
                "<tr{gray}>\n  <td class='home-data'><a href='{url}'>{url}</a></td>\n  <td class='home-data'>{help}</td>\n</tr>\n"
            );
            continue;
        }
        let (method, button) =
            if h.mutates { ("post", "<button>") } else { ("get", "<button class='button-as-link'>") };
        let _ = write!(
            s,
            "<tr{gray}>\n  <td class='home-data'><form action='{url}' method='{method}' id='{url}' class='home-form'>\n    {button}{url}</button>\n  </form></td>\n  <td class='home-data'>{help}</td>\n</tr>\n"
        );
        for p in h.params {
            let id = format!("param-{}-{}-{}", index + 1, url.replace('/', "-"), p.name);
            let _ = write!(s, "<tr{gray}>\n  <td class='option'>");
            match p.kind {
                ParamKind::Text => {
                    let _ = write!(s, "<input type='text' name='{}' id='{id}' form='{url}' />", p.name);
                }
                ParamKind::Flag => {
                    let _ = write!(s, "<input type='checkbox' name='{}' id='{id}' form='{url}'>", p.name);
                }
                ParamKind::Choice(choices) => {
                    let _ = write!(s, "\n    <select name='{}' id='{id}' form='{url}'>\n", p.name);
                    let current = query.get(p.name).unwrap_or("");
                    for c in choices {
                        let c = sanitize(c);
                        let sel = if c == current { " selected" } else { "" };
                        let _ = writeln!(s, "      <option value='{c}'{sel}>{c}</option>");
                    }
                    s.push_str("    </select>\n  ");
                }
            }
            let _ = write!(
                s,
                "</td>\n  <td class='home-data'><label for='{id}'>{}</label></td>\n</tr>\n",
                sanitize(p.help)
            );
        }
    }
    s.push_str(TAIL);
    s
}

/// Envoy's `Html::Utility::sanitize`.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fixtures;

    #[test]
    fn help_starts_with_envoys_heading_and_is_sorted() {
        let h = help_text();
        assert!(h.starts_with("admin commands are:\n  /: Admin home page\n"));
        let paths: Vec<&str> = HANDLERS.iter().map(|h| h.path).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn every_help_line_is_envoys_except_the_stats_format_choices() {
        for line in help_text().lines() {
            if line.starts_with("      format: Format to use; One of (text, json, prometheus)") {
                continue;
            }
            assert!(fixtures::ENVOY_HELP.lines().any(|l| l == line), "not in Envoy's /help: {line:?}");
        }
    }

    #[test]
    fn post_only_endpoints_are_marked_as_envoy_marks_them() {
        let h = help_text();
        for line in [
            "  /drain_listeners (POST): drain listeners\n",
            "  /healthcheck/fail (POST): cause the server to fail health checks\n",
            "  /logging (POST): query/change logging levels\n",
            "  /quitquitquit (POST): exit the server\n",
            "  /reset_counters (POST): reset all counters to zero\n",
            "  /reopen_logs (POST): reopen access logs\n",
        ] {
            assert!(h.contains(line), "{line}");
        }
    }

    #[test]
    fn home_page_rows_match_envoys_markup() {
        let page = home_page(&Query::default());
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang='en'>\n<head>\n"));
        assert!(page.contains("<title>Legate Admin</title>"));
        assert!(page.ends_with("    </tbody>\n  </table>\n</body>\n</html>\n"));
        // A GET endpoint without parameters is a link, without the leading '/'.
        assert!(page.contains("  <td class='home-data'><a href='certs'>certs</a></td>\n  <td class='home-data'>print certs on machine</td>\n"));
        // A POST endpoint is a form with a plain button.
        assert!(page.contains("<form action='quitquitquit' method='post' id='quitquitquit' class='home-form'>\n    <button>quitquitquit</button>\n  </form></td>\n  <td class='home-data'>exit the server</td>\n</tr>\n"));
        // A GET endpoint with parameters is a form with a link-styled button.
        assert!(page.contains("<form action='stats/prometheus' method='get' id='stats/prometheus' class='home-form'>\n    <button class='button-as-link'>stats/prometheus</button>"));
        // The empty level is preselected when the query has none; labels are sanitized.
        assert!(
            page.contains("      <option value='' selected></option>\n      <option value='trace'>trace</option>\n")
        );
        assert!(page.contains("this will change all loggers&#39;s level</label>"));
        assert!(!page.contains("<a href=''>"));
    }

    #[test]
    fn home_page_parameter_rows_use_envoys_input_kinds() {
        let page = home_page(&Query::default());
        assert!(page.contains(
            "  <td class='option'><input type='text' name='filter' id='param-3-clusters-filter' form='clusters' /></td>\n  <td class='home-data'><label for='param-3-clusters-filter'>Regular expression (Google re2) for filtering clusters by name</label></td>\n</tr>\n"
        ));
        assert!(page.contains(
            "<input type='checkbox' name='include_eds' id='param-4-config_dump-include_eds' form='config_dump'>"
        ));
        assert!(page.contains("    <select name='format' id='param-10-listeners-format' form='listeners'>\n      <option value='text'>text</option>\n      <option value='json'>json</option>\n    </select>\n  </td>\n"));
    }

    #[test]
    fn sanitize_escapes_html_specials() {
        assert_eq!(sanitize("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
    }
}
