//! `shardrop serve [--config FILE]`: runs the control plane.

use std::path::PathBuf;

use shardrop_backend::app::Application;
use shardrop_backend::config::Settings;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: shardrop serve [--config FILE]

Configuration: defaults, then FILE (TOML, see shardrop.example.toml), then environment
variables: SHARDROP_LISTEN, SHARDROP_DATA_DIR, and SHARDROP__SECTION__KEY for any field.";

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SHARDROP_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [cmd] if cmd == "serve" => None,
        [cmd, flag, file] if cmd == "serve" && flag == "--config" => Some(PathBuf::from(file)),
        _ => {
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardrop: {e:#}");
            std::process::ExitCode::FAILURE
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
