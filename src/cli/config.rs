//! `flashsale config SUBCOMMAND [FLAGS]`: the settings that subcommand would run with,
//! resolved by the very clap definitions it parses (flags, then environment, then
//! defaults), one `FLASHSALE_NAME=value  # source` line each, secrets masked.

use std::io::Write;

use clap::{parser::ValueSource, Arg, ArgMatches, CommandFactory};

#[derive(clap::Args)]
#[command(after_help = "Examples: flashsale config serve; flashsale config sink --kafka-brokers k:9092; \
                        flashsale config coupon create. Required flags of the subcommand may be left out.")]
pub struct Args {
    /// The subcommand (`serve`, `sink`, `migrate`, `coupon create`, ...) and, if you like,
    /// flags as you would give them to it.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true,
          value_name = "SUBCOMMAND")]
    command: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.command[0] != "config", "flashsale config names another subcommand (e.g. serve)");
    let mut cmd = relaxed(super::Cli::command());
    cmd.build();
    let argv = std::iter::once("flashsale".to_string()).chain(args.command.iter().cloned());
    let matches = cmd.clone().try_get_matches_from(argv).unwrap_or_else(|e| e.exit());
    let lines = effective(&cmd, &matches);
    anyhow::ensure!(!lines.is_empty(), "flashsale {} has no FLASHSALE_* settings", args.command.join(" "));
    let width = lines.iter().map(|(setting, _)| setting.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (setting, source) in lines {
        writeln!(out, "{setting:width$}  # {source}")?;
    }
    Ok(())
}

/// The command tree with nothing required, so `config coupon create` needs no `--id`.
fn relaxed(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| arg.required(false)).mut_subcommands(relaxed)
}

/// (`NAME=value`, source) of every setting of the subcommand `matches` ends at (its
/// parents' settings are not its own), then the settings every subcommand has.
fn effective(root: &clap::Command, matches: &ArgMatches) -> Vec<(String, &'static str)> {
    let (mut cmd, mut matches) = (root, matches);
    while let Some((name, sub)) = matches.subcommand() {
        cmd = cmd.find_subcommand(name).expect("clap matched a subcommand it has");
        matches = sub;
    }
    let own = cmd.get_arguments().filter(|arg| !arg.is_global_set());
    let global = root.get_arguments().filter(|arg| arg.is_global_set());
    own.chain(global)
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let (value, source) = resolved(arg, matches);
            Some((format!("{env}={value}"), source))
        })
        .collect()
}

/// The value an argument resolved to (masked when secret) and where it came from.
fn resolved(arg: &Arg, matches: &ArgMatches) -> (String, &'static str) {
    let id = arg.get_id().as_str();
    let raw: Vec<String> = matches
        .get_raw(id)
        .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let value = raw.join(",");
    let value = if arg.is_hide_env_values_set() { masked(&value) } else { value };
    let source = match matches.value_source(id) {
        Some(ValueSource::CommandLine) => "flag",
        Some(ValueSource::EnvVariable) => "env",
        Some(ValueSource::DefaultValue) => "default",
        _ => "unset",
    };
    (value, source)
}

/// A secret setting as printed: a URL without its password, anything else `***`.
fn masked(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else if value.contains("://") {
        crate::config::redact(value)
    } else {
        "***".into()
    }
}
