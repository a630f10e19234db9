//! `dragoman-ari-gateway`: this one service as its own process, on NATS.

use std::process::ExitCode;

use clap::Parser;
use dragoman_runtime::service::{self, BusKind, EXIT_BAD_CONFIG, ServiceArgs};

fn main() -> ExitCode {
    let args = ServiceArgs::parse();
    let config = match service::load_config(args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Refuse before connecting to anything: there is no default ARI password.
    if let Err(err) = dragoman_ari_gateway::check_config(&config) {
        eprintln!("dragoman-ari-gateway: bad configuration: {err}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    match service::async_runtime() {
        Ok(runtime) => runtime.block_on(service::run_process(
            config,
            dragoman_ari_gateway::SERVICE,
            BusKind::Nats,
            dragoman_ari_gateway::run,
        )),
        Err(code) => code,
    }
}
