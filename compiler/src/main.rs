//! The `meshc` command line: a thin layer over the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use meshc::check::{self, Settings};
use meshc::config::{self, Config};
use meshc::diagnostic::Severity;
use meshc::report::{self, OutputFormat};
use meshc::rules;
use meshc::validate;

#[derive(Parser)]
#[command(
    name = "meshc",
    version,
    about = "Compile and lint Istio traffic policy repositories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lint policy files and directories (recursively, *.yaml and *.yml).
    Check(CheckArgs),
    /// Print the documentation of a rule, or list every rule.
    Rule {
        /// A rule code (`MESH0101`) or name (`unknown-field`).
        code: Option<String>,
        /// List every rule (with `--markdown`, the full reference page).
        #[arg(long)]
        all: bool,
        /// With `--all`: print the rule reference as one Markdown page.
        #[arg(long)]
        markdown: bool,
    },
    /// Write the JSON Schemas of the supported kinds (for editors) into a directory.
    Schema {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Files and directories to check.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    output_format: OutputFormat,
    /// Exit 1 when a diagnostic reaches this severity.
    #[arg(long, value_parser = ["error", "warning", "info"])]
    fail_level: Option<String>,
    /// Namespace of resources without `metadata.namespace` (default: `default`).
    #[arg(long)]
    namespace: Option<String>,
    /// Destination hosts declared nowhere in the repo are errors, not warnings.
    #[arg(long)]
    strict_hosts: bool,
    /// Configuration file (default: `meshc.toml` in the first path or above it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Report only these rules (codes, code prefixes or names; comma-separated).
    #[arg(long, value_delimiter = ',')]
    select: Vec<String>,
    /// Never report these rules (codes, code prefixes or names; comma-separated).
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// Colour in human output: auto, always or never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(args),
        Command::Rule {
            code,
            all,
            markdown,
        } => run_rule(code, all, markdown),
        Command::Schema { out } => run_schema(out),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("meshc: error: {message}");
    ExitCode::from(2)
}

fn run_check(args: CheckArgs) -> ExitCode {
    let config_path = args
        .config
        .clone()
        .or_else(|| config::discover(args.paths.first().map(PathBuf::as_path)));
    let mut config = match &config_path {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => return usage_error(e),
        },
        None => Config::default(),
    };
    for selector in args.select.iter().chain(&args.ignore) {
        if !rules::all()
            .iter()
            .any(|r| rules::selector_matches(selector, r))
        {
            return usage_error(format!(
                "`{selector}` names no rule (see `meshc rule --all`)"
            ));
        }
    }
    if !args.select.is_empty() {
        config.lint.select = Some(args.select.clone());
    }
    config.lint.ignore.extend(args.ignore.iter().cloned());
    let fail_level = args
        .fail_level
        .as_deref()
        .or(config.lint.fail_level.as_deref())
        .and_then(Severity::parse)
        .unwrap_or(Severity::Error);
    let settings = Settings {
        config,
        namespace: args.namespace.clone(),
        strict_hosts: args.strict_hosts,
    };
    let checked = match check::check_paths(&args.paths, &settings) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let color = match args.color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let text = report::render(
        args.output_format,
        &checked.db,
        &checked.diagnostics,
        &checked.summary,
        color,
    );
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(2);
    }
    if checked.fails_at(fail_level) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_rule(code: Option<String>, all: bool, markdown: bool) -> ExitCode {
    if all || code.is_none() {
        if markdown {
            print!("{}", rules_markdown());
        } else {
            for rule in rules::all() {
                println!(
                    "{}  {:<28} {:<8} {}",
                    rule.code,
                    rule.name,
                    rule.severity.as_str(),
                    rule.summary
                );
            }
        }
        return ExitCode::SUCCESS;
    }
    let code = code.unwrap_or_default();
    match rules::find(&code) {
        Some(rule) => {
            print!("{}", rules::render_doc(rule));
            ExitCode::SUCCESS
        }
        None => usage_error(format!("no rule `{code}` (see `meshc rule --all`)")),
    }
}

/// The generated rule reference (docs/rules.md).
fn rules_markdown() -> String {
    let mut out = String::from(
        "# meshc rules\n\nGenerated by `meshc rule --all --markdown`; do not edit.\n\n| code | name | severity | summary |\n|---|---|---|---|\n",
    );
    for rule in rules::all() {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            rule.code,
            rule.name,
            rule.severity.as_str(),
            rule.summary
        ));
    }
    for rule in rules::all() {
        out.push('\n');
        out.push_str(
            &rules::render_doc(rule)
                .replacen("# ", "## ", 1)
                .replace("\n## ", "\n### "),
        );
    }
    out
}

fn run_schema(out: PathBuf) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&out) {
        return usage_error(format!("{}: {e}", out.display()));
    }
    for (_, name, text) in validate::SCHEMAS {
        let path = out.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            return usage_error(format!("{}: {e}", path.display()));
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}
