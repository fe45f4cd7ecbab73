//! The station's own web page (issue 15): the page's assets and its SVG charts.

pub mod charts;
pub mod page;
