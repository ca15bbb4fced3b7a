//! The `switchboard` command: a thin layer that parses arguments, calls the library and maps
//! errors to messages and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use switchboard::config::Config;
use switchboard::{admin_cli, bench, cli, daemon, paths};
use switchboard_driver_api::{ChannelKind, SpanKind};

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Call-center telephony appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon.
    Run {
        /// Configuration file (default: the built-in simulated-card configuration).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the database, recordings and control socket live.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validates a configuration file (default: the built-in one) and its IVR flows, and
    /// reports every error with file, line and key.
    Check {
        file: Option<PathBuf>,
        /// The data directory whose prompt sets the flows would use.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Loads the IVR flows again in the running daemon; calls in progress finish on the
    /// version they started with.
    Reload {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The maintenance shell of the running daemon (the same commands as on its serial
    /// ports): interactive, or one command with `-c`.
    Shell {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Run this command line and print its output, e.g. `-c "show channels trunk"`.
        #[arg(short = 'c', long = "command")]
        command: Option<String>,
    },
    /// Shows the running daemon's card, counters and calls.
    Status {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Lists the most recent call detail records.
    Cdr {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// A terminal client of the agent protocol: log in, take a seat, see events, act.
    Agent {
        /// The daemon's agent port.
        #[arg(long, default_value = "127.0.0.1:7070")]
        server: String,
        /// Agent id (job number).
        #[arg(long)]
        agent: String,
        /// Seat (sliceNo) to open.
        #[arg(long)]
        seat: Option<u16>,
        /// Watch every seat (supervisors).
        #[arg(long)]
        watch: bool,
        /// Run the commands and `expect` lines of a file instead of reading commands.
        #[arg(long)]
        script: Option<PathBuf>,
    },
    /// Drives the far ends of the simulated card in a running daemon.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Offline DSP tools.
    #[command(subcommand)]
    Dsp(DspCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Builds the prompt sets that read out numbers, amounts and dates, with espeak-ng
    /// (the daemon builds missing ones at start; this rebuilds them, e.g. after changing
    /// the voice, or replaces them from recordings of your own with the same names).
    Prompts {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// en, zh, or all.
        #[arg(long, default_value = "all")]
        lang: String,
        /// Render every prompt again, even those that exist.
        #[arg(long)]
        force: bool,
    },
    /// Manages agent accounts (works while the daemon runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Lists, exports and expires call recordings (works while the daemon runs).
    Recordings(admin_cli::RecordingsArgs),
    /// Manages the caller lists: blacklist, vip, member (works while the daemon runs).
    List(admin_cli::ListArgs),
    /// Lists voicemail messages (works while the daemon runs).
    Voicemail(admin_cli::VoicemailArgs),
    /// Writes the calls, agents or satisfaction report as CSV or as one HTML file.
    Report(admin_cli::ReportArgs),
    /// The telephony hardware of this machine: DAHDI spans and sound devices, and the board
    /// file of each card (`list`); the DAHDI system.conf for the configured card (`system-conf`).
    #[command(subcommand)]
    Hw(switchboard::hw::HwCommand),
}

#[derive(Subcommand)]
enum SimCommand {
    /// The simulated exchange calls a trunk port; prints what happens until the call ends.
    Call {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Trunk port to ring (1-based).
        #[arg(long)]
        port: u16,
        /// Caller id: digits, P for a withheld number or O for an unavailable one. The exchange
        /// sends it as `[line] trunk_caller_id` says: DTMF before the first ring, or FSK.
        #[arg(long, default_value = "")]
        from: String,
        /// Digits the caller types once answered.
        #[arg(long, default_value = "")]
        digits: String,
        /// WAV file the caller plays after the digits.
        #[arg(long)]
        play: Option<PathBuf>,
        /// Seconds after the answer at which the caller hangs up (default: 5).
        #[arg(long)]
        hangup_after: Option<f64>,
        /// Return as soon as the call is placed instead of following it.
        #[arg(long)]
        no_wait: bool,
    },
    /// The far end of a port hangs up.
    Hangup {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        port: u16,
    },
    /// The phone on a seat port goes off-hook.
    Offhook {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        port: u16,
    },
    /// The far end of a connected port types digits.
    Dial {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        port: u16,
        digits: String,
    },
    /// The far end of a port plays a call-progress tone: dial, ringback, busy, congestion, off.
    Tone {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        port: u16,
        tone: String,
    },
    /// Records what the far end of a port hears into DATA_DIR/sim-recordings/NAME.wav.
    Record {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        name: String,
    },
    /// The far end of a port sends back what it hears, LOSS dB quieter (a loop-back plug),
    /// for line tests; `--off` stops it.
    Echo {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 6)]
        loss: u8,
        #[arg(long)]
        off: bool,
    },
    /// Prints every call event and far-end report until interrupted.
    Watch {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DspCommand {
    /// Prints the DTMF digits found in a WAV file (8 kHz PCM or G.711; other rates resampled).
    Dtmf { file: PathBuf },
    /// Writes DTMF digits to an 8 kHz 16-bit WAV file.
    GenDtmf { digits: String, out: PathBuf },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Runs the media pipeline on the simulated card: channels per core, and deadline misses
    /// at real-time pacing.
    Media {
        #[arg(long, default_value_t = 240)]
        channels: u16,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Skip the real-time run and only measure the free-running throughput.
        #[arg(long)]
        free_running_only: bool,
        /// Run every channel's echo canceller too.
        #[arg(long)]
        echo_canceller: bool,
    },
    /// Agents over TCP: ring-to-Ring-event latency with many agents and calls, actions per
    /// second, memory per session.
    Agents {
        #[arg(long, default_value_t = 500)]
        agents: u16,
        #[arg(long, default_value_t = 100.0)]
        calls_per_second: f64,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
    },
    /// IVR call set-ups per second through a flow with a menu, a web-service lookup and a
    /// queue, with the calls up at once and the engine's deadline misses.
    Ivr {
        #[arg(long, default_value_t = 200.0)]
        calls_per_second: f64,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Run the card free (no deadlines) to find the control plane's ceiling.
        #[arg(long)]
        free_running: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates an account; the password is read from stdin (one line).
    Add {
        /// The agent's id (job number): 1-32 of A-Z a-z 0-9 _ . -
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// agent, supervisor or admin.
        #[arg(long, default_value = "agent", value_parser = parse_role)]
        role: switchboard::store::Role,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Sets a new password, read from stdin (one line).
    Passwd {
        id: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Deletes an account.
    Del {
        id: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Lists the accounts.
    List {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<switchboard::store::Role, String> {
    switchboard::store::Role::parse(s).ok_or_else(|| "expected agent, supervisor or admin".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The client commands' output is often piped into `head` or `grep -q`: a closed pipe ends
    // them quietly, as it does any Unix tool, instead of a panic in println!. The daemon
    // keeps Rust's default (SIGPIPE ignored), so that a client going away is just an error.
    if !matches!(cli.command, Command::Run { .. }) {
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { config, data_dir } => {
            let config_path = config.clone();
            let config = match &config {
                Some(path) => Config::load(path),
                None => Config::builtin(),
            }
            .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
            let data_dir = paths::data_dir(data_dir);
            daemon::init_logging(&config.log_level);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(daemon::run(config, config_path, data_dir, daemon::shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file, data_dir } => match file.as_deref().map_or_else(Config::builtin, Config::load)
        {
            Ok(config) => {
                let name = file
                    .as_ref()
                    .map_or(switchboard::config::DEFAULT_CONFIG_NAME.into(), |f| f.display().to_string());
                let sets = switchboard::daemon::prompt_set_dir(&paths::data_dir(data_dir));
                let flows = match switchboard::daemon::load_flows(&config, Some(&sets)) {
                    Ok(flows) => flows,
                    Err(errors) => {
                        for e in &errors {
                            eprintln!("{e}");
                        }
                        eprintln!("{} error(s)", errors.len());
                        return Ok(ExitCode::from(2));
                    }
                };
                let card = config.card_info();
                let count = |kind: ChannelKind| card.channels.iter().filter(|c| c.kind == kind).count();
                let e1 = card.spans.iter().filter(|s| s.kind == SpanKind::E1).count();
                println!(
                    "{name}: ok ({} trunk ports, {} seat ports, {} sound seats, {e1} E1 spans, {} routes, {} flows in {})",
                    count(ChannelKind::FxoTrunk),
                    count(ChannelKind::FxsSeat),
                    count(ChannelKind::Sound),
                    config.calls.routes.len(),
                    flows.flows.len(),
                    config.ivr.flows.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} error(s)", errors.0.len());
                Ok(ExitCode::from(2))
            }
        },
        Command::Status { data_dir, json } => cli::status(&paths::data_dir(data_dir), json),
        Command::Shell { data_dir, command } => cli::shell(&paths::data_dir(data_dir), command),
        Command::Reload { data_dir } => cli::request(
            &paths::data_dir(data_dir),
            &switchboard::control::protocol::Request::FlowsReload {},
            false,
        ),
        Command::Cdr { data_dir, limit, json } => cli::cdr(&paths::data_dir(data_dir), limit, json),
        Command::Sim(cmd) => sim(cmd),
        Command::Dsp(DspCommand::Dtmf { file }) => {
            println!("{}", cli::dtmf_in_wav(&file)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Dsp(DspCommand::GenDtmf { digits, out }) => {
            cli::gen_dtmf(&digits, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prompts { data_dir, lang, force } => {
            let langs = match lang.as_str() {
                "all" => switchboard::speech::Lang::ALL.to_vec(),
                l => vec![switchboard::speech::Lang::parse(l)
                    .with_context(|| format!("--lang {l:?}: use en, zh or all"))?],
            };
            let dir = switchboard::daemon::prompt_set_dir(&paths::data_dir(data_dir));
            let tts = switchboard::speech::EspeakNg::new();
            switchboard::speech::Tts::check(&tts).map_err(|e| anyhow::anyhow!("{e}"))?;
            for lang in langs {
                let n = switchboard::speech::build_prompt_set(&dir, lang, &tts, force)
                    .map_err(|e| anyhow::anyhow!("the {lang} prompt set: {e}"))?;
                println!("{lang}: {n} prompts written in {}", dir.join(lang.as_str()).display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Ivr { calls_per_second, seconds, free_running }) => {
            if !(calls_per_second > 0.0 && calls_per_second <= 480.0) || !(seconds > 0.0 && seconds <= 3600.0)
            {
                bail!("--calls-per-second must be 0-480 and --seconds 0-3600");
            }
            bench::ivr(calls_per_second, seconds, free_running)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Agents { agents, calls_per_second, seconds }) => {
            if agents == 0 || !(calls_per_second > 0.0 && calls_per_second <= 1000.0) || !(seconds > 0.0) {
                bail!("--agents, --calls-per-second (at most 1000) and --seconds must be positive");
            }
            bench::agents(agents, calls_per_second, seconds)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Media { channels, seconds, free_running_only, echo_canceller }) => {
            if channels == 0 || !(seconds > 0.0) {
                bail!("--channels and --seconds must be positive");
            }
            bench::media(channels, seconds, !free_running_only, echo_canceller)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => user(cmd),
        Command::Recordings(args) => admin_cli::recordings(args),
        Command::List(args) => admin_cli::list(args),
        Command::Voicemail(args) => admin_cli::voicemail(args),
        Command::Report(args) => admin_cli::report(args),
        Command::Hw(cmd) => switchboard::hw::run(cmd),
        Command::Agent { server, agent, seat, watch, script } => {
            // The password comes from SWITCHBOARD_PASSWORD, a hidden prompt, or the first line
            // of stdin when stdin is not a terminal.
            let password = match std::env::var("SWITCHBOARD_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    use std::io::IsTerminal;
                    if std::io::stdin().is_terminal() {
                        read_hidden(&format!("Password for {agent}: "))?
                    } else {
                        read_password_line()?
                    }
                }
            };
            let opts = switchboard::agent::console::Options { server, agent, password, seat, watch };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            match script {
                Some(path) => {
                    runtime
                        .block_on(switchboard::agent::console::script(opts, &path.display().to_string()))?;
                    println!("script passed");
                }
                None => runtime.block_on(switchboard::agent::console::interactive(opts))?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn sim(cmd: SimCommand) -> Result<ExitCode> {
    use switchboard::control::protocol::Request;
    let (data_dir, request, follow) = match cmd {
        SimCommand::Call { data_dir, port, from, digits, play, hangup_after, no_wait } => {
            let play = match play {
                Some(p) => Some(
                    std::fs::canonicalize(&p)
                        .with_context(|| format!("cannot open {}", p.display()))?
                        .display()
                        .to_string(),
                ),
                None => None,
            };
            let request = Request::SimCall {
                port,
                from,
                digits,
                digits_delay_ms: 1000,
                play,
                hangup_after: Some(hangup_after.unwrap_or(5.0)),
                watch: !no_wait,
            };
            (data_dir, request, !no_wait)
        }
        SimCommand::Hangup { data_dir, port } => (data_dir, Request::SimHangup { port }, false),
        SimCommand::Offhook { data_dir, port } => (data_dir, Request::SimOffHook { port }, false),
        SimCommand::Dial { data_dir, port, digits } => (data_dir, Request::SimDial { port, digits }, false),
        SimCommand::Tone { data_dir, port, tone } => {
            let tone = if tone == "off" { None } else { Some(tone) };
            (data_dir, Request::SimTone { port, tone }, false)
        }
        SimCommand::Record { data_dir, port, seconds, name } => {
            (data_dir, Request::SimRecord { port, seconds, name }, false)
        }
        SimCommand::Echo { data_dir, port, loss, off } => {
            (data_dir, Request::SimEcho { port, loss_db: (!off).then_some(loss) }, false)
        }
        SimCommand::Watch { data_dir } => (data_dir, Request::Watch {}, true),
    };
    cli::request(&paths::data_dir(data_dir), &request, follow)
}

fn user(cmd: UserCommand) -> Result<ExitCode> {
    use switchboard::accounts::{self, CLI_ACTOR};
    use switchboard::store::{Role, Store};

    // Only `add` may create the database: the other commands need an account that exists,
    // and creating an empty database in a mistyped directory would hide the mistake.
    let open = |data_dir: Option<PathBuf>, create: bool| -> Result<_> {
        let data_dir = paths::data_dir(data_dir);
        let db = paths::database(&data_dir);
        if create {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        } else if !db.exists() {
            bail!("no database at {}: no accounts have been created yet", db.display());
        }
        Store::open(&db).with_context(|| format!("cannot open {}", db.display()))
    };
    match cmd {
        UserCommand::Add { id, name, role, data_dir } => {
            // Checked before reading the password so that a typo fails before the prompt.
            accounts::valid_agent_id(&id)?;
            let store = open(data_dir, true)?;
            if store.agent_get(&id).wait()?.is_some() {
                return Err(accounts::AccountError::Exists(id).into());
            }
            let password = read_new_password(&id)?;
            let name = name.unwrap_or_else(|| id.clone());
            accounts::add_agent(&store, CLI_ACTOR, &id, &name, role, &password)?;
            println!("added {role} {id}");
        }
        UserCommand::Passwd { id, data_dir } => {
            let store = open(data_dir, false)?;
            if store.agent_get(&id).wait()?.is_none() {
                bail!("no agent with id {id}");
            }
            let password = read_new_password(&id)?;
            accounts::set_password(&store, CLI_ACTOR, &id, &password)?;
            println!("changed the password of {id}");
        }
        UserCommand::Del { id, data_dir } => {
            let store = open(data_dir, false)?;
            accounts::delete_agent(&store, CLI_ACTOR, &id)?;
            println!("deleted {id}");
        }
        UserCommand::List { data_dir } => {
            let store = open(data_dir, false)?;
            print!("{}", accounts::format_agent_table(&store.agent_list().wait()?));
            if store.agent_count_by_role(Role::Admin).wait()? == 0 {
                eprintln!("{}", accounts::NO_ADMIN_HINT);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a new password from stdin: one line, without its line ending. On a terminal it
/// prompts on stderr with echo off and asks twice, since a typo cannot be seen.
fn read_new_password(id: &str) -> Result<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return read_password_line();
    }
    let first = read_hidden(&format!("New password for {id}: "))?;
    let second = read_hidden("Repeat the password: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

fn read_password_line() -> Result<String> {
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin (it must be UTF-8 text)")?;
    if n == 0 {
        bail!("no password on stdin: give it as one line");
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

/// Reads a line from the terminal on stdin without echoing it.
fn read_hidden(prompt: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    // The newline the user types is still echoed, so the next output starts on a new line.
    quiet.local_flags.insert(LocalFlags::ECHONL);
    eprint!("{prompt}");
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &quiet).context("cannot turn the terminal's echo off")?;
    let line = read_password_line();
    // Echo must come back even if the read failed.
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &saved).context("cannot turn the terminal's echo back on")?;
    line
}
