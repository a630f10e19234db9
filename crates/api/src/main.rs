//! `dragoman-api`: this one service as its own process, on NATS.

fn main() -> std::process::ExitCode {
    dragoman_runtime::service::service_main("api", dragoman_api::run)
}
