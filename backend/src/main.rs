//! `shardrop serve [--config FILE]`: runs the control plane.
//! `shardrop check-config [--config FILE]`: loads the configuration as `serve` would and
//! prints it with secrets redacted, so a deployment can be checked before it starts.
//! `shardrop user-add NAME [--config FILE]`: makes an account, the password read from
//! standard input (for a server with `auth.open_signup = false`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use shardrop_backend::app::Application;
use shardrop_backend::config::Settings;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: shardrop serve [--config FILE]
       shardrop check-config [--config FILE]
       shardrop user-add NAME [--config FILE]

serve         runs the server.
check-config  loads the configuration exactly as serve does and prints it as JSON with
              every secret redacted (exit 0), or says what is wrong (exit 1).
user-add      makes the account NAME in the configured database; its password is the
              first line of standard input (never an argument, which others can see).

Configuration: defaults, then FILE (TOML, see shardrop.example.toml), then environment
variables: SHARDROP_LISTEN, SHARDROP_DATA_DIR, and SHARDROP__SECTION__KEY for any field.";

enum Command {
    Serve,
    CheckConfig,
    UserAdd(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, config)) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match command {
        Command::CheckConfig => check_config(config.as_deref()),
        Command::Serve => actix_web::rt::System::new().block_on(serve(config)),
        Command::UserAdd(name) => actix_web::rt::System::new().block_on(user_add(&name, config.as_deref())),
    }
}

fn parse_args(args: &[String]) -> Option<(Command, Option<PathBuf>)> {
    let (command, rest) = args.split_first()?;
    let (command, rest) = match (command.as_str(), rest) {
        ("serve", rest) => (Command::Serve, rest),
        ("check-config", rest) => (Command::CheckConfig, rest),
        ("user-add", [name, rest @ ..]) if !name.starts_with('-') => (Command::UserAdd(name.clone()), rest),
        _ => return None,
    };
    match rest {
        [] => Some((command, None)),
        [flag, file] if flag == "--config" => Some((command, Some(PathBuf::from(file)))),
        _ => None,
    }
}

fn check_config(config: Option<&Path>) -> ExitCode {
    let shown = Settings::load(config)
        .map_err(|e| e.to_string())
        .and_then(|settings| serde_json::to_string_pretty(&settings.redacted()).map_err(|e| e.to_string()));
    match shown {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardrop: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn user_add(name: &str, config: Option<&Path>) -> ExitCode {
    let made = async {
        let settings = Settings::load(config)?;
        let mut password = String::new();
        std::io::stdin().read_line(&mut password)?;
        let password = password.trim_end_matches(['\n', '\r']).to_owned();
        let db = shardrop_backend::db::connect(&settings.database_url(), 1).await?;
        let user = shardrop_backend::auth::routes::create_user(&db, name, password).await?;
        anyhow::Ok(user)
    };
    match made.await {
        Ok(user) => {
            println!("made user {} ({})", user.username, user.id);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardrop: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<PathBuf>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SHARDROP_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardrop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref())?;
    let app = Application::build(settings.clone()).await?;
    tracing::info!(
        "shardrop listening on http://{}:{} (storage: {:?}, tracker: {:?})",
        settings.listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h),
        app.port(),
        settings.storage.kind,
        settings.tracker.kind
    );
    app.run_until_stopped().await?;
    Ok(())
}
