//! The page's static assets, built into the binary: no CDN, no web fonts, no third-party
//! code. The server serves them at `/`, `/app.js`, `/app.css` and `/favicon.svg`.

/// The page (`/`).
pub const INDEX_HTML: &str = include_str!("index.html");
/// The page's script (`/app.js`).
pub const APP_JS: &str = include_str!("app.js");
/// The page's style sheet (`/app.css`).
pub const APP_CSS: &str = include_str!("app.css");
/// The page's icon (`/favicon.svg`).
pub const FAVICON_SVG: &str = include_str!("favicon.svg");
/// The collector's network page (its `/`): a map and a table of every station.
pub const NETWORK_HTML: &str = include_str!("network.html");
/// The network page's script (`/network.js`).
pub const NETWORK_JS: &str = include_str!("network.js");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::charts;

    #[test]
    fn the_page_shows_every_chart_and_only_known_ones() {
        for spec in charts::specs() {
            let img = format!(
                "data-chart=\"{}\" loading=\"lazy\" src=\"/chart/{}.svg?",
                spec.name, spec.name
            );
            assert!(
                INDEX_HTML.contains(&img),
                "index.html lacks the {} chart",
                spec.name
            );
        }
        let shown = INDEX_HTML.matches("data-chart=\"").count();
        assert_eq!(
            shown,
            charts::specs().len(),
            "index.html shows a chart specs() lacks"
        );
    }

    #[test]
    fn nothing_is_fetched_from_elsewhere() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("app.css", APP_CSS),
            ("favicon.svg", FAVICON_SVG),
        ] {
            let outside = text
                .replace("http://www.w3.org/2000/svg", "")
                .contains("://");
            assert!(!outside, "{name} refers to another site");
            assert!(
                !text.contains("@import") && !text.contains("@font-face"),
                "{name}"
            );
            assert!(
                !text.contains("//cdn") && !text.contains("url(http"),
                "{name}"
            );
        }
    }

    #[test]
    fn the_script_holds_no_unit_conversion_factors() {
        // The imperial factors come from /api/now's `units` table (crate::units).
        for factor in crate::units::conversions(crate::units::UnitSystem::Imperial) {
            for number in [factor.scale.to_string(), format!("{:.3}", factor.scale)] {
                assert!(
                    !APP_JS.contains(&number),
                    "app.js hard-codes {number} ({} → {})",
                    factor.from,
                    factor.to
                );
            }
        }
        assert!(!APP_JS.contains("25.4") && !APP_JS.contains("1.8 "));
        assert!(APP_JS.contains("units.imperial"));
    }

    #[test]
    fn the_page_links_its_own_assets() {
        for asset in ["/app.js", "/app.css", "/favicon.svg"] {
            assert!(INDEX_HTML.contains(asset), "{asset}");
        }
        for route in ["/api/now", "/api/health", "/api/events", "/export.csv"] {
            assert!(
                INDEX_HTML.contains(route) || APP_JS.contains(route),
                "{route} unused"
            );
        }
        assert!(FAVICON_SVG.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    }
}
