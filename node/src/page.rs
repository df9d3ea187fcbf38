//! The one page that draws a cluster picture (`slotguard_check::picture`): node cards, slot
//! bars, messages in flight, budgets, history and a sequence diagram, for the three views —
//! `slotguard explore` (a path of the model), `slotguard check --html` (a report in one file)
//! and the live view of `slotguard cluster` (running nodes).
//!
//! The HTML, CSS and JavaScript are compiled into the binary (`node/ui/`), so the page works
//! from any directory and without network access: nothing is loaded from a CDN, no web font or
//! icon font is used (stateright's stock page shows empty boxes where its icon font is missing,
//! specs/background.md §S2). Every page is self-contained: the script and style are inlined and
//! the data, or how to fetch it from the serving binary, is a JSON object in the page.

use serde::Serialize;

const TEMPLATE: &str = include_str!("../ui/page.html");
const STYLE: &str = include_str!("../ui/picture.css");
const SCRIPT: &str = include_str!("../ui/picture.js");

/// JSON that may stand inside a `<script>` element: every `<` is written as `\u003c`, which
/// JSON reads as the same character, so no string in the data can close the element.
fn script_json(value: &impl Serialize) -> serde_json::Result<String> {
    Ok(serde_json::to_string(value)?.replace('<', "\\u003c"))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page, with `boot` (`{"mode": "explore" | "report" | "live", "title": ..., ...}`) as its
/// data.
pub(crate) fn page(title: &str, boot: &impl Serialize) -> serde_json::Result<String> {
    let boot = script_json(boot)?;
    // The data goes in last, so that nothing in it is taken for a placeholder.
    Ok(TEMPLATE
        .replace("/*TITLE*/", &escape_html(title))
        .replace("/*CSS*/", STYLE)
        .replace("/*JS*/", SCRIPT)
        .replace("/*BOOT*/", &boot))
}

/// A response of `tiny_http` with a content type.
pub(crate) fn response(
    status: u16,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut r = tiny_http::Response::from_data(body.into()).with_status_code(status);
    if let Ok(h) = format!("Content-Type: {content_type}").parse::<tiny_http::Header>() {
        r = r.with_header(h);
    }
    if let Ok(h) = "Cache-Control: no-store".parse::<tiny_http::Header>() {
        r = r.with_header(h);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_the_script_element_and_the_page_names_no_url() {
        let boot = serde_json::json!({"mode": "report", "title": "</script><b>x</b>"});
        let html = page("a <title>", &boot).expect("serializes");
        assert_eq!(html.matches("</script>").count(), 2, "only the page's own");
        assert!(html.contains("\\u003c/script>\\u003cb>"));
        assert!(html.contains("<title>a &lt;title&gt;</title>"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        for placeholder in ["/*TITLE*/", "/*CSS*/", "/*JS*/", "/*BOOT*/"] {
            assert!(!html.contains(placeholder), "{placeholder} replaced");
        }
    }

    #[test]
    fn headers_parse() {
        let r = response(404, "text/plain; charset=utf-8", "no");
        assert_eq!(r.status_code().0, 404);
        assert_eq!(r.headers().len(), 2);
    }
}
