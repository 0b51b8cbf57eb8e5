//! Where a setting comes from: a TOML file (`--config FILE`), the
//! environment (`SWITCHBOARD_<FLAG>`), the command line, or the default.
//! Later sources win: flags > environment > file > defaults. Every key is
//! a flag of the one table ([`super::flags`]), so the file, the variables,
//! `--help` and `switchboard config` cannot disagree about names, and a
//! key that is not a flag is an error naming the file and the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{flags, Config, Kind};

/// The prefix of the environment variables: `SWITCHBOARD_MAX_CONNECTIONS`
/// is `--max-connections`.
pub const ENV_PREFIX: &str = "SWITCHBOARD_";

/// Variables of the project's own tools (the test suites, the benchmark),
/// which share the prefix but set no flag: not warned about.
const TOOL_VARIABLES: &[&str] = &[
    "SWITCHBOARD_BIN",
    "SWITCHBOARD_REQUIRE_ALL",
    "SWITCHBOARD_PID",
    "SWITCHBOARD_BEFORE",
    "SWITCHBOARD_BEFORE_DROP",
];

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// A key of the config file, at this line (from 1).
    File(PathBuf, usize),
    /// An environment variable.
    Env(String),
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path, line) => write!(f, "{}:{line}", path.display()),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::Flag => f.write_str("command line"),
        }
    }
}

/// One setting that is not its default: the flag's name, its value as
/// text (`true`/`false` for switches) and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub source: Source,
}

/// A config made from every source, with what each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The settings given by some source, in the table's order.
    pub settings: Vec<Setting>,
    /// Things to log once the logger is up (unknown variables).
    pub warnings: Vec<String>,
}

/// Build the config from the command line's `(flag, value)` pairs (in
/// order; a switch has no value) and the environment's variables. The
/// file is `--config`'s, else `SWITCHBOARD_CONFIG`'s, else none.
pub fn load(
    flags_given: &[(String, Option<String>)],
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, String> {
    let mut chosen: BTreeMap<&'static str, Setting> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut from_env = Vec::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let name = rest.to_ascii_lowercase().replace('_', "-");
        match flag(&name) {
            Some(f) => from_env.push((f.name, env_value(f.kind, &var, &value)?, var)),
            None if TOOL_VARIABLES.contains(&var.as_str()) => {}
            None => warnings.push(format!("{var} names no flag; ignored")),
        }
    }
    let mut from_flags = Vec::new();
    for (name, value) in flags_given {
        let f = flag(name).ok_or_else(|| format!("unknown flag --{name} (see --help)"))?;
        let value = match (f.kind, value) {
            (Kind::Switch, None) => "true".to_owned(),
            // `--trace=false` turns off what the file or environment set.
            (Kind::Switch, Some(v)) => switch_word(v)
                .ok_or_else(|| format!("--{name}={v}: a switch is true or false"))?
                .to_owned(),
            (_, None) => return Err(format!("--{name} needs a value")),
            (_, Some(v)) => v.clone(),
        };
        from_flags.push((f.name, value));
    }
    // The file named on the command line, else in the environment.
    let file = from_flags
        .iter()
        .rev()
        .find(|(name, _)| *name == "config")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            from_env
                .iter()
                .find(|(name, ..)| *name == "config")
                .map(|(_, v, _)| v.clone())
        });
    let file_settings = match &file {
        Some(file) => read_file(Path::new(file))?,
        None => Vec::new(),
    };
    let env_settings = from_env.into_iter().map(|(name, value, var)| Setting {
        name,
        value,
        source: Source::Env(var),
    });
    let flag_settings = from_flags.into_iter().map(|(name, value)| Setting {
        name,
        value,
        source: Source::Flag,
    });
    // In rising precedence: a later one replaces an earlier one.
    for setting in file_settings
        .into_iter()
        .chain(env_settings)
        .chain(flag_settings)
    {
        chosen.insert(setting.name, setting);
    }
    let mut config = Config::default();
    let mut settings = Vec::new();
    for f in flags() {
        let Some(setting) = chosen.remove(f.name) else {
            continue;
        };
        let result = match (f.kind, setting.value.as_str()) {
            (Kind::Switch, "true") => config.set(f.name, None),
            (Kind::Switch, _) => Ok(()),
            (_, value) => config.set(f.name, Some(value)),
        };
        result.map_err(|e| match &setting.source {
            Source::File(path, line) => format!("{}:{line}: {e}", path.display()),
            Source::Env(var) => format!("{var}: {e}"),
            _ => e,
        })?;
        settings.push(setting);
    }
    config.validate()?;
    config.settings = settings.clone();
    Ok(Loaded {
        config,
        settings,
        warnings,
    })
}

fn flag(name: &str) -> Option<&'static super::Flag> {
    flags().find(|f| f.name == name)
}

/// A variable's value as a flag's text; a switch takes `1`/`true`/`on`/
/// `yes` or `0`/`false`/`off`/`no`.
fn env_value(kind: Kind, var: &str, value: &str) -> Result<String, String> {
    if kind != Kind::Switch {
        return Ok(value.to_owned());
    }
    switch_word(value)
        .map(str::to_owned)
        .ok_or_else(|| format!("{var}: {value:?} is not true or false"))
}

/// A switch's value in words: `true` or `false`.
fn switch_word(value: &str) -> Option<&'static str> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some("true"),
        "" | "0" | "false" | "off" | "no" => Some("false"),
        _ => None,
    }
}

/// The settings of a TOML file: flat `flag-name = value` pairs.
/// Strings and integers are taken as written on the command line, a
/// switch is `true` or `false`, and an array of strings is joined with
/// commas (for address blocks and origins).
pub fn read_file(path: &Path) -> Result<Vec<Setting>, String> {
    let at = |line: usize| format!("{}:{line}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    type Table = BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>;
    let table: Table = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(span.start));
        format!("{}: {}", at(line), e.message())
    })?;
    let mut settings = Vec::new();
    for (key, value) in table {
        let line = line_of(key.span().start);
        let name = key.get_ref().as_str();
        let f = flag(name).ok_or_else(|| {
            format!(
                "{}: unknown key {name:?} (keys are the flag names of --help)",
                at(line)
            )
        })?;
        if f.name == "config" {
            return Err(format!("{}: a config file cannot name another", at(line)));
        }
        let text = toml_text(f.kind, value.get_ref())
            .map_err(|want| format!("{}: {name} must be {want}", at(line)))?;
        let source = Source::File(path.to_owned(), line);
        settings.push(Setting {
            name: f.name,
            value: text,
            source,
        });
    }
    Ok(settings)
}

/// A TOML value as a flag's text, or what it should have been.
fn toml_text(kind: Kind, value: &toml::Value) -> Result<String, &'static str> {
    use toml::Value;
    match (kind, value) {
        (Kind::Switch, Value::Boolean(on)) => Ok(on.to_string()),
        (Kind::Switch, _) => Err("true or false"),
        (_, Value::String(s)) => Ok(s.clone()),
        (_, Value::Integer(n)) => Ok(n.to_string()),
        (Kind::Cidrs | Kind::Text, Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or("a list of strings"))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        _ => Err("a string or a whole number"),
    }
}

/// The effective configuration as a TOML file that would give it, each
/// line saying where its value came from; values that could carry a
/// secret are redacted. Flags without a value are commented out.
pub fn effective(settings: &[Setting]) -> String {
    let mut out = String::new();
    for f in flags() {
        let given = settings.iter().find(|s| s.name == f.name);
        let (value, source) = match given {
            Some(s) => (s.value.as_str(), s.source.to_string()),
            None => (f.default, Source::Default.to_string()),
        };
        let line = match (f.kind, value) {
            (Kind::Switch, "off" | "false") => format!("{} = false", f.name),
            (Kind::Switch, _) => format!("{} = true", f.name),
            (_, "-") => format!("# {} =", f.name),
            (Kind::Count, v) if v.parse::<u64>().is_ok() => format!("{} = {v}", f.name),
            (_, v) => format!("{} = {:?}", f.name, redact(f.name, v)),
        };
        out.push_str(&format!("{line:<44} # {source}\n"));
    }
    out
}

/// A value safe to show: the password of a URL and any value of a flag
/// named for a secret are replaced.
pub fn redact(name: &str, value: &str) -> String {
    if name.contains("secret") && !name.ends_with("-file") || name.contains("password") {
        return "(redacted)".into();
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:(redacted)@{host}");
        }
    }
    value.to_owned()
}

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
