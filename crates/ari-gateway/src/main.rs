//! `dragoman-ari-gateway`: this one service as its own process, on NATS.

fn main() -> std::process::ExitCode {
    dragoman_runtime::service::service_main("ari-gateway", dragoman_ari_gateway::run)
}
