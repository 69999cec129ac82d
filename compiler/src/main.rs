//! The `meshc` command line: a thin layer over the library.

use std::io::IsTerminal;
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
    /// The Bookinfo walkthrough, end to end, on the embedded policy: check, build, start the
    /// Bookinfo services and mesh-proxy on loopback, drive traffic and report what happened.
    Demo {
        /// Requests per counted scenario (the A/B split, the abort, the retries).
        #[arg(long, default_value_t = 1000)]
        requests: u32,
        /// Keep the policy's fault delays (Bookinfo's 7 s) instead of a tenth of them.
        #[arg(long)]
        full_delay: bool,
    },
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
    /// Check, then compile the policy into one routing table (nothing is written on errors).
    Build {
        #[command(flatten)]
        input: InputArgs,
        /// Where to write the artifact (atomically: a temporary file, then a rename).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Show what a compiled table holds: header, hashes, sections, hosts, routes, clusters.
    Inspect {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        output_format: ExplainFormat,
    },
    /// Explain which rule a request matches and what happens to it, with the proxy's executor.
    Route {
        /// An artifact, or policy files and directories (compiled in memory).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long, default_value = "/")]
        path: String,
        /// A request header, `name: value` (repeatable).
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        output_format: ExplainFormat,
    },
    /// Check, build and server-side apply the table to a Kubernetes ConfigMap (with
    /// immutable revisions for `--rollback`); `--dry-run` prints it instead.
    #[cfg(feature = "deploy")]
    #[command(
        after_help = "--namespace is required: the ConfigMap's namespace, and that of \
policy resources that name none.\n\nExit codes: 0 deployed, unchanged or rolled back; 1 the \
check failed, the table is over 1 MiB, or the cluster refused; 2 usage or kubeconfig errors.\n\n\
See docs/deploy.md."
    )]
    Deploy {
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        flags: meshc::deploy::DeployFlags,
    },
    /// Compare what two policy directories or artifacts do with traffic, host by host
    /// (exit 0 when equal, 1 when different, 2 on errors).
    Diff(DiffArgs),
    /// Draw the services, subsets and weighted routes of a policy or an artifact.
    Graph {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, value_enum, default_value = "dot")]
        format: meshc::graph::Format,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExplainFormat {
    Human,
    Json,
}

/// The inputs and settings shared by commands that compile a policy repository.
#[derive(clap::Args)]
struct InputArgs {
    /// Policy files and directories (recursively, *.yaml and *.yml).
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// Namespace of resources without `metadata.namespace` (default: `default`).
    #[arg(long)]
    namespace: Option<String>,
    /// Destination hosts declared nowhere in the repo are errors, not warnings.
    #[arg(long)]
    strict_hosts: bool,
    /// Configuration file (default: `meshc.toml` in the first path or above it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// OLD and NEW, each a policy directory (or file) or an artifact; with `--git`, the
    /// policy paths to compare (default: `.`).
    paths: Vec<PathBuf>,
    /// Compare the working tree's paths with the same paths at this git revision.
    #[arg(long, value_name = "REV")]
    git: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    output_format: meshc::diff::OutputFormat,
    /// Namespace of resources without `metadata.namespace` (default: `default`).
    #[arg(long)]
    namespace: Option<String>,
    /// Configuration file (default: `meshc.toml` in the first path or above it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    #[arg(long, value_enum, default_value = "human")]
    output_format: OutputFormat,
    /// Exit 1 when a diagnostic reaches this severity.
    #[arg(long, value_parser = ["error", "warning", "info"])]
    fail_level: Option<String>,
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
        Command::Demo {
            requests,
            full_delay,
        } => run_demo(meshc::demo::Options {
            requests,
            full_delay,
        }),
        Command::Rule {
            code,
            all,
            markdown,
        } => run_rule(code, all, markdown),
        Command::Schema { out } => run_schema(out),
        Command::Build { input, output } => run_build(input, output),
        Command::Inspect {
            file,
            output_format,
        } => run_inspect(file, output_format),
        Command::Diff(args) => run_diff(args),
        Command::Graph { input, format } => run_graph(input, format),
        Command::Route {
            inputs,
            host,
            port,
            method,
            path,
            headers,
            namespace,
            output_format,
        } => run_route(
            inputs,
            RouteArgs {
                host,
                port,
                method,
                path,
                headers,
                namespace,
            },
            output_format,
        ),
        #[cfg(feature = "deploy")]
        Command::Deploy { input, flags } => run_deploy(input, flags),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("meshc: error: {message}");
    ExitCode::from(2)
}

fn run_check(args: CheckArgs) -> ExitCode {
    let mut settings = match settings_for(&args.input) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
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
    let lint = &mut settings.config.lint;
    if !args.select.is_empty() {
        lint.select = Some(args.select.clone());
    }
    lint.ignore.extend(args.ignore.iter().cloned());
    let fail_level = args
        .fail_level
        .as_deref()
        .or(lint.fail_level.as_deref())
        .and_then(Severity::parse)
        .unwrap_or(Severity::Error);
    let checked = match check::check_paths(&args.input.paths, &settings) {
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
    meshc::out!("{text}");
    if checked.fails_at(fail_level) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_rule(code: Option<String>, all: bool, markdown: bool) -> ExitCode {
    if all || code.is_none() {
        if markdown {
            meshc::out!("{}", rules_markdown());
        } else {
            for rule in rules::all() {
                meshc::outln!(
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
            meshc::out!("{}", rules::render_doc(rule));
            ExitCode::SUCCESS
        }
        None => usage_error(format!("no rule `{code}` (see `meshc rule --all`)")),
    }
}

/// The generated rule reference (docs/rules.md).
fn rules_markdown() -> String {
    let mut out = String::from(
        "# meshc rules\n\nGenerated by `meshc rule --all --markdown`; do not edit.\n\n",
    );
    out.push_str(&rules::summary_markdown());
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
        meshc::outln!("{}", path.display());
    }
    ExitCode::SUCCESS
}

/// Loads settings for `build` and `route` the way `check` does.
fn settings_for(input: &InputArgs) -> Result<Settings, String> {
    let config_path = input
        .config
        .clone()
        .or_else(|| config::discover(input.paths.first().map(PathBuf::as_path)));
    let config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    Ok(Settings {
        config,
        namespace: input.namespace.clone(),
        strict_hosts: input.strict_hosts,
    })
}

/// Checks and prints the diagnostics (to stderr, so that stdout stays for results).
fn check_for_build(input: &InputArgs) -> Result<meshc::check::Checked, ExitCode> {
    let settings = settings_for(input).map_err(usage_error)?;
    let checked = check::check_paths(&input.paths, &settings).map_err(usage_error)?;
    if !checked.diagnostics.is_empty() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let text = report::render(
            OutputFormat::Human,
            &checked.db,
            &checked.diagnostics,
            &checked.summary,
            color,
        );
        eprint!("{text}");
    }
    Ok(checked)
}

fn run_build(input: InputArgs, output: PathBuf) -> ExitCode {
    let checked = match check_for_build(&input) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let bytes = match meshc::compile::build(&checked) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("meshc: error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = meshc::emit::write_atomically(&output, &bytes) {
        return usage_error(format!("{}: {e}", output.display()));
    }
    // The artifact is read back through the proxy's checked reader before we say it is good.
    let aligned = mesh_table::AlignedBytes::new(&bytes);
    match mesh_table::Table::load(aligned.as_bytes()) {
        Ok(table) => {
            let info = table.info();
            let routes: usize = table.virtual_hosts().map(|v| v.routes().len()).sum();
            meshc::outln!(
                "wrote {} ({} bytes, format v{}, sha256:{}): {} virtual hosts, {} routes, {} clusters",
                output.display(),
                bytes.len(),
                info.version,
                meshc::sha256::hex(&info.content_hash),
                table.virtual_hosts().len(),
                routes,
                table.clusters().len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&output);
            eprintln!("meshc: internal error: the written table does not load: {e}");
            ExitCode::from(2)
        }
    }
}

/// `meshc deploy`: the check and build come first, so a failing policy contacts no cluster.
#[cfg(feature = "deploy")]
fn run_deploy(input: InputArgs, flags: meshc::deploy::DeployFlags) -> ExitCode {
    let namespace = input.namespace.as_deref();
    if let Some(wanted) = &flags.rollback {
        return meshc::deploy::run_rollback(namespace, &flags, wanted);
    }
    if flags.history {
        return meshc::deploy::run_history(namespace, &flags);
    }
    if let Err(e) = meshc::deploy::target(namespace, &flags) {
        return usage_error(e);
    }
    let checked = match check_for_build(&input) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match meshc::compile::build(&checked) {
        Ok(bytes) => meshc::deploy::run_deploy(bytes, &input.paths, namespace, &flags),
        Err(e) => {
            eprintln!("meshc: error: {e}; nothing was deployed");
            ExitCode::from(1)
        }
    }
}

fn read_artifact(path: &std::path::Path) -> Result<mesh_table::AlignedBytes, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(mesh_table::AlignedBytes::new(&bytes))
}

fn run_inspect(file: PathBuf, format: ExplainFormat) -> ExitCode {
    let bytes = match read_artifact(&file) {
        Ok(b) => b,
        Err(e) => return usage_error(e),
    };
    let table = match mesh_table::Table::load(bytes.as_bytes()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "meshc: error: {}: not a valid routing table: {e}",
                file.display()
            );
            return ExitCode::from(1);
        }
    };
    let json = meshc::explain::inspect_json(&table);
    match format {
        ExplainFormat::Json => meshc::outln!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ),
        ExplainFormat::Human => meshc::out!("{}", meshc::explain::inspect_human(&json)),
    }
    ExitCode::SUCCESS
}

struct RouteArgs {
    host: String,
    port: Option<u16>,
    method: String,
    path: String,
    headers: Vec<String>,
    namespace: Option<String>,
}

fn run_route(inputs: Vec<PathBuf>, args: RouteArgs, format: ExplainFormat) -> ExitCode {
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            return usage_error(format!("--header `{h}`: expected `name: value`"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let query = meshc::explain::RouteQuery {
        host: args.host,
        port: args.port,
        method: args.method,
        path: args.path,
        headers,
    };
    // One file that starts with the artifact's magic label is a compiled table.
    let is_artifact = inputs.len() == 1
        && std::fs::read(&inputs[0]).is_ok_and(|b| b.starts_with(&mesh_table::format::MAGIC));
    let bytes = if is_artifact {
        match read_artifact(&inputs[0]) {
            Ok(b) => b,
            Err(e) => return usage_error(e),
        }
    } else {
        let input = InputArgs {
            paths: inputs,
            namespace: args.namespace,
            strict_hosts: false,
            config: None,
        };
        let checked = match check_for_build(&input) {
            Ok(c) => c,
            Err(code) => return code,
        };
        match meshc::compile::build(&checked) {
            Ok(b) => mesh_table::AlignedBytes::new(&b),
            Err(e) => {
                eprintln!("meshc: error: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let table = match mesh_table::Table::load(bytes.as_bytes()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("meshc: error: not a valid routing table: {e}");
            return ExitCode::from(1);
        }
    };
    let json = meshc::explain::route_json(&table, &query);
    match format {
        ExplainFormat::Json => meshc::outln!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ),
        ExplainFormat::Human => meshc::out!("{}", meshc::explain::route_human(&json)),
    }
    ExitCode::SUCCESS
}

fn run_demo(options: meshc::demo::Options) -> ExitCode {
    meshc::outln!("meshc demo: the Istio Bookinfo walkthrough, through mesh-proxy on loopback\n");
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let mut output = meshc::demo::Output {
        out: &mut stdout,
        live_progress: meshc::demo::stderr_is_terminal(),
    };
    match meshc::demo::run(options, &mut output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshc: demo failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Whether a file starts with the artifact's magic label.
fn is_artifact(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == mesh_table::format::MAGIC)
}

/// The table an input names: one artifact, or policy paths checked and compiled in memory.
/// A policy with errors prints its diagnostics to stderr and exits with `policy_error`;
/// warnings are left to `meshc check`.
fn load_input(input: &InputArgs, policy_error: u8) -> Result<mesh_table::AlignedBytes, ExitCode> {
    if let [path] = input.paths.as_slice()
        && is_artifact(path)
    {
        return read_artifact(path).map_err(usage_error);
    }
    let settings = settings_for(input).map_err(usage_error)?;
    let checked = check::check_paths(&input.paths, &settings).map_err(usage_error)?;
    if checked.summary.errors > 0 {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let text = report::render(
            OutputFormat::Human,
            &checked.db,
            &checked.diagnostics,
            &checked.summary,
            color,
        );
        eprint!("{text}");
    }
    match meshc::compile::build(&checked) {
        Ok(bytes) => Ok(mesh_table::AlignedBytes::new(&bytes)),
        Err(e) => {
            eprintln!("meshc: error: {e}");
            Err(ExitCode::from(policy_error))
        }
    }
}

fn run_diff(args: DiffArgs) -> ExitCode {
    let side = |paths: Vec<PathBuf>| InputArgs {
        paths,
        namespace: args.namespace.clone(),
        strict_hosts: false,
        config: args.config.clone(),
    };
    let show = |paths: &[PathBuf]| {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        shown.join(" ")
    };
    // The snapshot of `--git` lives until the old side is read.
    let (old, new, _snapshot) = match &args.git {
        Some(rev) => {
            let paths = if args.paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                args.paths.clone()
            };
            let snapshot = match meshc::diff::git::snapshot(rev, &paths) {
                Ok(s) => s,
                Err(e) => return usage_error(e),
            };
            let at_rev: Vec<String> = paths
                .iter()
                .map(|p| format!("{rev}:{}", p.display()))
                .collect();
            (
                (side(snapshot.paths.clone()), at_rev.join(" ")),
                (side(paths.clone()), show(&paths)),
                Some(snapshot),
            )
        }
        None => {
            let [old, new] = args.paths.as_slice() else {
                return usage_error("diff takes OLD and NEW (or `--git REV [PATH]...`)");
            };
            (
                (side(vec![old.clone()]), show(std::slice::from_ref(old))),
                (side(vec![new.clone()]), show(std::slice::from_ref(new))),
                None,
            )
        }
    };
    let mut models = Vec::new();
    for (input, label) in [&old, &new] {
        let bytes = match load_input(input, 2) {
            Ok(b) => b,
            Err(code) => return code,
        };
        match mesh_table::Table::load(bytes.as_bytes()) {
            Ok(table) => models.push(meshc::diff::model::read(&table)),
            Err(e) => return usage_error(format!("{label}: not a valid routing table: {e}")),
        }
    }
    let diff = meshc::diff::diff(&models[0], &models[1]);
    let text = meshc::diff::render(args.output_format, &diff, &old.1, &new.1);
    meshc::out!("{text}");
    if diff.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_graph(input: InputArgs, format: meshc::graph::Format) -> ExitCode {
    let bytes = match load_input(&input, 1) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let table = match mesh_table::Table::load(bytes.as_bytes()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("meshc: error: not a valid routing table: {e}");
            return ExitCode::from(1);
        }
    };
    let text = meshc::graph::render(&meshc::diff::model::read(&table), format);
    meshc::out!("{text}");
    ExitCode::SUCCESS
}
