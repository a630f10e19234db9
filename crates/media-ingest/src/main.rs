//! `dragoman-media-ingest`: this one service as its own process, on NATS.

fn main() -> std::process::ExitCode {
    dragoman_runtime::service::service_main("media-ingest", dragoman_media_ingest::run)
}
