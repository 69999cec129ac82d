//! meshc: compiler and linter for Istio traffic policy repositories.
//!
//! The stages, each a module: [`load`] and [`parse`] (YAML with spans) -> [`resource`]
//! (kinds, names) -> [`validate`] (JSON Schema) -> typecheck -> rules -> lower -> optimise
//! -> emit. [`check`] runs the front of that pipeline; [`report`] renders what it found.

pub mod check;
pub mod config;
pub mod diagnostic;
pub mod load;
pub mod parse;
pub mod report;
pub mod resource;
pub mod rules;
pub mod source;
pub mod suggest;
pub mod testgen;
pub mod validate;
