//! The report side of the CLI: `anemone export` and `anemone stats`.
