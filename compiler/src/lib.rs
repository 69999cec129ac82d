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

/// Writes formatted text to stdout: every command's output goes through here. Unlike
/// `print!`, a stdout that cannot be written (`meshc inspect t.mtbl | head`, a full disk) does
/// not panic: the process ends with status 2.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(2);
    }
}

/// `print!` through [`write_stdout`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` through [`write_stdout`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
