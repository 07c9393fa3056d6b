//! The policy author's tools: test suites (`roomguard test`) and their reports, and the explained decision of
//! `roomguard check`.

pub(crate) mod check_report;
pub mod suite;
pub mod suite_report;
