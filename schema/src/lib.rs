//! The `olo/v1` config model: YAML with source positions, the JSON Schema files, loading a
//! repository snapshot, semantic validation, and compiler-style diagnostics.
//!
//! Pure: no I/O beyond what a [`Snapshot`] already holds.

mod checks;
pub mod dataset;
pub mod diagnostic;
pub mod duration;
pub mod json_schema;
pub mod load;
pub mod model;
pub mod name;
pub mod revalidate;
pub mod schedule;
pub mod snapshot;
pub mod table;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use name::Name;
pub use revalidate::{revalidate, Input, Revalidation};
pub use snapshot::{Entry, Snapshot};
pub use validate::{validate, validate_with, Cache, Job, Repo, Validation, Workspace};
