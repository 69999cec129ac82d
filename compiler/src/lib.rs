//! meshc: compiler and linter for Istio traffic policy repositories.
//!
//! The stages, each a module: [`load`] and [`parse`] (YAML with spans) -> [`resource`]
//! (kinds, names) -> [`validate`] (JSON Schema) -> typecheck -> rules -> lower -> optimise
//! -> emit. [`check`] runs the front of that pipeline; [`report`] renders what it found.

pub mod check;
pub mod compile;
pub mod config;
pub mod demo;
#[cfg(feature = "deploy")]
pub mod deploy;
pub mod diagnostic;
pub mod diff;
pub mod emit;
pub mod explain;
pub mod graph;
pub mod load;
pub mod lower;
pub mod parse;
pub mod report;
pub mod resource;
pub mod rules;
pub mod sha256;
pub mod source;
pub mod suggest;
pub mod testgen;
pub mod typecheck;
pub mod validate;
