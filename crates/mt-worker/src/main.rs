//! `dragoman-mt-worker`: this one service as its own process, on NATS.

fn main() -> std::process::ExitCode {
    dragoman_runtime::service::service_main("mt-worker", dragoman_mt_worker::run)
}
