//! `dragoman-api`: this one service as its own process, on NATS.

use std::process::ExitCode;

use clap::Parser;
use dragoman_runtime::service::{self, BusKind, EXIT_BAD_CONFIG, ServiceArgs};

fn main() -> ExitCode {
    let args = ServiceArgs::parse();
    let config = match service::load_config(args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Refuse before connecting or binding anything.
    if let Err(err) = dragoman_api::check_config(&config) {
        eprintln!("dragoman-api: bad configuration: {err}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    match service::async_runtime() {
        Ok(runtime) => runtime.block_on(service::run_process(config, "api", BusKind::Nats, dragoman_api::run)),
        Err(code) => code,
    }
}
