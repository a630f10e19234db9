//! Consume loops every service uses, so bad input is handled the same way everywhere: a
//! malformed message is logged with its subject, counted in `dragoman_bus_invalid_total` and
//! skipped (acked/terminated when durable, answered with an error when a request). It never
//! crashes or stalls the loop.

use std::future::Future;
use std::time::Duration;

use dragoman_bus::control::{ControlError, ErrorCode, Reply};
use dragoman_bus::{Bus, BusError, ConsumerSpec, DecodeError, Message, record_invalid};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Shutdown;

/// Serves JSON requests on `subject` (queue group `group`) until shutdown.
pub async fn serve_requests<Req, Resp, H, Fut>(
    bus: &Bus,
    subject: &str,
    group: &str,
    shutdown: &Shutdown,
    concurrency: usize,
    handler: H,
) -> Result<(), BusError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    H: Fn(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ControlError>>,
{
    let requests = bus.queue_subscribe(subject, group).await?;
    let handler = &handler;
    requests
        .take_until(shutdown.triggered())
        .for_each_concurrent(concurrency.max(1), |request| async move {
            let reply: Reply<Resp> = match dragoman_bus::wire::decode::<Req>(&request.payload) {
                Ok(req) => handler(req).await.into(),
                Err(err) => {
                    record_invalid(bus.subjects(), &request.subject, &err);
                    Reply::Error(ControlError::new(ErrorCode::BadRequest, err.to_string()))
                }
            };
            if request.reply.is_some()
                && let Err(err) = bus.respond_json(&request, &reply).await
            {
                tracing::warn!(subject = %request.subject, error = %err, "could not send reply");
            }
        })
        .await;
    Ok(())
}

/// What a durable handler says about a message it could not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Might work later (a dependency is down): deliver again after the delay.
    #[error("retry later: {reason}")]
    Retry { reason: String, delay: Duration },
    /// Will never work (e.g. audio that cannot be decoded): report and drop.
    #[error("{0}")]
    Permanent(String),
}

/// Consumes a durable consumer until shutdown: `decode` each message, hand it to `handler`,
/// ack on success. Undecodable messages are counted and terminated; `Retry` naks; `Permanent`
/// is logged, counted and terminated.
pub async fn consume_durable<T, D, H, Fut>(
    bus: &Bus,
    spec: &ConsumerSpec,
    shutdown: &Shutdown,
    concurrency: usize,
    decode: D,
    handler: H,
) -> Result<(), BusError>
where
    D: Fn(&Message) -> Result<T, DecodeError>,
    H: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), HandleError>>,
{
    let deliveries = bus.durable_subscribe(spec).await?;
    let (decode, handler) = (&decode, &handler);
    let durable = spec.durable.as_str();
    deliveries
        .take_until(shutdown.triggered())
        .for_each_concurrent(concurrency.max(1), |delivery| async move {
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(err) => {
                    tracing::warn!(durable, error = %err, "durable consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return;
                }
            };
            let subject = delivery.message.subject.clone();
            let settled = match decode(&delivery.message) {
                Err(err) => {
                    record_invalid(bus.subjects(), &subject, &err);
                    delivery.term().await
                }
                Ok(item) => match handler(item).await {
                    Ok(()) => delivery.ack().await,
                    Err(HandleError::Retry { reason, delay }) => {
                        tracing::warn!(subject, durable, attempt = delivery.attempt, reason, "will retry");
                        delivery.nak(Some(delay)).await
                    }
                    Err(HandleError::Permanent(reason)) => {
                        tracing::warn!(subject, durable, reason, "message failed for good");
                        metrics::counter!("dragoman_messages_failed_total", "durable" => durable.to_owned())
                            .increment(1);
                        delivery.term().await
                    }
                },
            };
            if let Err(err) = settled {
                // The message comes back after ack_wait; handlers are idempotent by event id.
                tracing::warn!(subject, durable, error = %err, "could not settle message");
            }
        })
        .await;
    Ok(())
}
