//! `dragoman-stt-worker`: this one service as its own process, on NATS.

fn main() -> std::process::ExitCode {
    dragoman_runtime::service::service_main("stt-worker", dragoman_stt_worker::run)
}
