//! The one escaper for the markup closewait writes by hand: SVG (diagrams, charts, the
//! state graph) and the HTML report.
//!
//! Both escape the five characters XML and HTML give meaning to. They differ in two
//! spellings only, kept so every output stays as it was: the apostrophe (`&apos;` is XML's
//! entity; HTML 4 has none, so the report writes the numeric `&#39;`), and control
//! characters, which the report replaces (they have no business in a page) and SVG passes
//! through.

/// The markup being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Markup {
    Xml,
    Html,
}

/// Escapes text for XML (SVG) element content and quoted attributes.
pub fn xml(s: &str) -> String {
    escape(s, Markup::Xml)
}

/// Escapes text for HTML element content and double- or single-quoted attributes; control
/// characters other than tab and newline become U+FFFD.
pub fn html(s: &str) -> String {
    escape(s, Markup::Html)
}

fn escape(s: &str, markup: Markup) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(match markup {
                Markup::Xml => "&apos;",
                Markup::Html => "&#39;",
            }),
            c if markup == Markup::Html && c.is_control() && c != '\n' && c != '\t' => {
                out.push('\u{FFFD}')
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_the_five_and_keeps_the_rest() {
        assert_eq!(
            xml("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(xml("é\u{1}"), "é\u{1}");
    }

    #[test]
    fn html_spells_the_apostrophe_numerically_and_replaces_controls() {
        assert_eq!(html("'x'\u{1b}\t\n"), "&#39;x&#39;\u{FFFD}\t\n");
    }
}
