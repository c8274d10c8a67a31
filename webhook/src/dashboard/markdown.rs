//! Descriptions (jobs, workspaces) are Markdown written by anyone who can open a pull request:
//! rendered to HTML with CommonMark, but raw HTML is shown as text, and only `http`, `https`,
//! `mailto` and relative links stay links (a `javascript:` link is text). Images are not
//! fetched: they show as links to themselves.

use pulldown_cmark::{html, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// `text` as safe HTML.
pub fn to_safe_html(text: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    // Whether each open link was kept (its end tag must match).
    let mut links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let keep = allowed(&dest_url);
            links.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then_some(Event::End(TagEnd::Link)),
        Event::Start(Tag::Image {
            dest_url, title, ..
        }) => {
            let keep = allowed(&dest_url);
            links.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url,
                title,
                id: CowStr::Borrowed(""),
            }))
        }
        Event::End(TagEnd::Image) => links
            .pop()
            .unwrap_or(false)
            .then_some(Event::End(TagEnd::Link)),
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

/// Whether a link may stay a link: web and mail links, and relative ones (no scheme).
fn allowed(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    let scheme_end = lower.find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)));
    match scheme_end.map(|i| (&lower[..i], &lower[i..])) {
        Some((scheme, rest)) if rest.starts_with(':') && !scheme.is_empty() => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::to_safe_html;

    #[test]
    fn markdown_renders_and_nothing_runs() {
        let text = "### orders_daily\n\nLoads **orders** from `landing`; see [the runbook](https://wiki.example/orders).\n\n\
                    <script>alert(1)</script>\n\n<img src=x onerror=alert(2)> and [click](javascript:alert(3)) \
                    and [rel](docs/orders.md) and ![logo](http://tracker.example/p.png) and [x](JaVaScRiPt:alert(4))\n";
        insta::assert_snapshot!(to_safe_html(text));
    }

    #[test]
    fn only_web_mail_and_relative_links_stay_links() {
        for (url, kept) in [
            ("https://a.example", true),
            ("http://a.example", true),
            ("mailto:ada@example.com", true),
            ("docs/x.md", true),
            ("#anchor", true),
            ("javascript:alert(1)", false),
            (" JAVASCRIPT:alert(1)", false),
            ("data:text/html,<b>", false),
            ("vbscript:x", false),
        ] {
            let html = to_safe_html(&format!("[t]({url})"));
            assert_eq!(html.contains("<a "), kept, "{url}: {html}");
        }
    }
}
