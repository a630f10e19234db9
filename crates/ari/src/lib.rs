//! The hand-rolled Asterisk ARI client (REST over reqwest, `/ari/events` over
//! tokio-tungstenite), typed from the ARI Swagger of Asterisk 22.
//!
//! Status: the crate exists so the workspace has its final shape; the client arrives with
//! issue #7. Nothing depends on it yet.
