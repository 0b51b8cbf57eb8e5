//! The subcommands that work on a database file, with or without a
//! server running on it: `backup` and `user`.

use std::io::IsTerminal;

/// `switchboard backup --db PATH --to FILE`.
pub fn backup(args: impl Iterator<Item = String>) -> Result<(), String> {
    let (mut db, mut to) = (None, None);
    let mut args = args;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("backup: {flag} needs a value"))?;
        match flag.as_str() {
            "--db" => db = Some(value),
            "--to" => to = Some(value),
            other => {
                return Err(format!(
                    "backup: unknown flag {other} (usage: backup --db PATH --to FILE)"
                ))
            }
        }
    }
    let (Some(db), Some(to)) = (db, to) else {
        return Err("usage: switchboard backup --db PATH --to FILE".into());
    };
    switchboard::store::backup::run(db.as_ref(), to.as_ref())?;
    println!("backed up {db} to {to}");
    Ok(())
}

const USER_USAGE: &str = "\
usage: switchboard user add NAME [--role admin|moderator|user] [--password-file FILE] [--db PATH]
       switchboard user passwd NAME [--password-file FILE] [--db PATH]
       switchboard user delete NAME [--db PATH]
       switchboard user list [--db PATH]
       switchboard user role NAME admin|moderator|user [--db PATH]
Every form takes --redis URL instead of --db for the accounts of a cluster.
The password is asked for (without echo) unless --password-file gives it (its
first line) or stdin is not a terminal (then its first line is read). --db
defaults to switchboard.db. A running server sees the change within seconds.";

/// `switchboard user ...`: accounts in a database file, whether or not a
/// server is running on it.
pub fn user(args: Vec<String>) -> Result<(), String> {
    use switchboard::auth::accounts::Accounts;
    use switchboard::auth::{password, Role};
    let (mut db, mut password_file, mut role, mut words) =
        ("switchboard.db".to_owned(), None, None, Vec::new());
    let mut redis = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--db" => db = value("--db")?,
            "--redis" => redis = Some(value("--redis")?),
            "--password-file" => password_file = Some(value("--password-file")?),
            "--role" => role = Some(value("--role")?),
            flag if flag.starts_with("--") => {
                return Err(format!("unknown flag {flag}\n{USER_USAGE}"))
            }
            _ => words.push(arg),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let parse_role =
        |r: &str| Role::parse(r).ok_or(format!("no role {r:?} (admin, moderator, user)"));
    // A cluster's accounts are in its Redis (`--redis`), else in the file.
    let cluster = match &redis {
        Some(url) => Some(switchboard::cluster::accounts::RedisAccounts::new(
            switchboard::cluster::Address::parse(url)?,
        )),
        None => None,
    };
    let file = match cluster {
        Some(_) => None,
        None => Some(switchboard::store::admin::open(db.as_ref())?),
    };
    let accounts: &dyn Accounts = match (&cluster, &file) {
        (Some(cluster), _) => cluster,
        (None, Some(file)) => file,
        (None, None) => return Err(USER_USAGE.to_owned()),
    };
    let fail = |e: switchboard::auth::accounts::StoreError| e.to_string();
    let hash = |name: &str| -> Result<String, String> {
        let secret = read_password(name, password_file.as_deref())?;
        if !(password::MIN_LEN..=password::MAX_LEN).contains(&secret.len()) {
            return Err(format!(
                "a password is {} to {} bytes",
                password::MIN_LEN,
                password::MAX_LEN
            ));
        }
        let mut salt = [0u8; 16];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?,
            &mut salt,
        )
        .map_err(|e| e.to_string())?;
        password::hash(&password::Slots::default(), &secret, &salt).map_err(|e| e.0)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match words.as_slice() {
        ["add", name] => {
            if !switchboard::chat::wire::valid_name(name) {
                return Err(format!(
                    "{name:?} is not a valid name (1-32 letters, digits, _ - .)"
                ));
            }
            let role = parse_role(role.as_deref().unwrap_or("user"))?;
            if accounts.find(name).map_err(fail)?.is_some() {
                return Err(format!("{name:?} already has an account"));
            }
            let hash = hash(name)?;
            if !accounts
                .create(name, Some(&hash), role, now)
                .map_err(fail)?
            {
                return Err(format!("{name:?} already has an account"));
            }
            println!("added {name} ({})", role.as_str());
        }
        ["passwd", name] => {
            if accounts.find(name).map_err(fail)?.is_none() {
                return Err(format!("no account {name:?}"));
            }
            let hash = hash(name)?;
            accounts.set_hash(name, &hash).map_err(fail)?;
            accounts.revoke_all(name).map_err(fail)?;
            println!("password of {name} changed; its sessions were revoked");
        }
        ["delete", name] => {
            if !accounts.delete(name).map_err(fail)? {
                return Err(format!("no account {name:?}"));
            }
            println!("deleted {name}");
        }
        ["list"] => {
            for (name, role) in accounts.all().map_err(fail)? {
                println!("{name}\t{}", role.as_str());
            }
        }
        ["role", name, role] => {
            let role = parse_role(role)?;
            if !accounts.set_role(name, role).map_err(fail)? {
                return Err(format!("no account {name:?}"));
            }
            println!("{name} is now {}", role.as_str());
        }
        _ => return Err(USER_USAGE.to_owned()),
    }
    // A server on the file sees the change at its next look; servers on a
    // Redis see it through the generation each change bumps.
    file.map_or(Ok(()), |file| file.changed().map_err(fail))
}

/// A password: the first line of `file`, or asked on the terminal without
/// echo, or the first line of stdin when it is not a terminal.
fn read_password(name: &str, file: Option<&str>) -> Result<String, String> {
    let first_line = |text: &str| text.lines().next().unwrap_or("").to_owned();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        return Ok(first_line(&text));
    }
    let mut line = String::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        return Ok(first_line(&line));
    }
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty")
            .and_then(|tty| {
                std::process::Command::new("stty")
                    .arg(arg)
                    .stdin(tty)
                    .status()
            })
            .is_ok_and(|s| s.success())
    };
    eprint!("password for {name}: ");
    let hidden = stty("-echo");
    let read = std::io::stdin().read_line(&mut line);
    if hidden {
        stty("echo");
    }
    eprintln!();
    read.map_err(|e| e.to_string())?;
    Ok(first_line(&line))
}
