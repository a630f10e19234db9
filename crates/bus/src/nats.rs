//! The NATS backend: core NATS for pub/sub and request/reply, JetStream for durable streams.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;

use crate::client::{
    Acker, BusError, ConsumerSpec, Delivery, DurableSubscription, Message, NatsOptions, Retention, StartAt, StreamSpec,
    Subscription,
};
use crate::headers::Headers;

#[derive(Clone)]
pub(crate) struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
}

impl NatsBus {
    pub(crate) async fn connect(options: &NatsOptions) -> Result<Self, BusError> {
        let mut connect = async_nats::ConnectOptions::new()
            .connection_timeout(if options.connect_timeout.is_zero() {
                Duration::from_secs(5)
            } else {
                options.connect_timeout
            })
            .subscription_capacity(options.subscription_capacity.max(64))
            .retry_on_initial_connect()
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("nats connected"),
                    async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                    async_nats::Event::SlowConsumer(sid) => {
                        metrics::counter!("dragoman_bus_dropped_total", "reason" => "slow_consumer").increment(1);
                        tracing::warn!(subscription = sid, "nats slow consumer: messages dropped");
                    }
                    other => tracing::info!(event = %other, "nats event"),
                }
            });
        if let Some(name) = &options.name {
            connect = connect.name(name);
        }
        if let Some(token) = &options.token {
            connect = connect.token(token.clone());
        }
        if let Some((user, password)) = &options.user_password {
            connect = connect.user_and_password(user.clone(), password.clone());
        }
        if let Some(path) = &options.credentials_file {
            connect = connect.credentials_file(path).await.map_err(|e| BusError::Connect {
                url: options.url.clone(),
                reason: format!("credentials file: {e}"),
            })?;
        }
        if options.tls_required {
            connect = connect.require_tls(true);
        }
        if let Some(ca) = &options.tls_ca_file {
            connect = connect.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &options.tls_client_cert {
            connect = connect.add_client_certificate(cert.clone(), key.clone());
        }
        let servers: Vec<async_nats::ServerAddr> = options
            .url
            .split(',')
            .map(|u| u.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|e| BusError::Connect { url: options.url.clone(), reason: format!("{e}") })?;
        // retry_on_initial_connect makes connect return at once; wait for the first connection
        // within the timeout so a wrong URL fails start-up clearly.
        let client = connect
            .connect(servers)
            .await
            .map_err(|e| BusError::Connect { url: options.url.clone(), reason: e.to_string() })?;
        let deadline = tokio::time::Instant::now() + options.connect_timeout.max(Duration::from_secs(1));
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() >= deadline {
                return Err(BusError::Connect {
                    url: options.url.clone(),
                    reason: "no connection within the connect timeout".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let jetstream = jetstream::new(client.clone());
        Ok(Self { client, jetstream })
    }

    pub(crate) async fn publish(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        reply: Option<String>,
    ) -> Result<(), BusError> {
        crate::subjects::validate_publish_subject(subject)?;
        let subject = subject.to_owned();
        let result = match reply {
            Some(reply) => self.client.publish_with_reply_and_headers(subject, reply, headers.to_nats(), payload).await,
            None => self.client.publish_with_headers(subject, headers.to_nats(), payload).await,
        };
        result.map_err(|e| BusError::backend("publish", e))
    }

    pub(crate) async fn publish_durable(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError> {
        crate::subjects::validate_publish_subject(subject)?;
        let ack = self
            .jetstream
            .publish_with_headers(subject.to_owned(), headers.to_nats(), payload)
            .await
            .map_err(|e| BusError::backend("publish durable", e))?;
        ack.await.map(drop).map_err(|e| {
            use async_nats::jetstream::context::PublishErrorKind;
            match e.kind() {
                PublishErrorKind::StreamNotFound => BusError::NoStream { subject: subject.to_owned() },
                _ if e.to_string().contains("maximum bytes") || e.to_string().contains("resource limits") => {
                    BusError::StreamFull { stream: subject.to_owned() }
                }
                _ => BusError::backend("publish durable", e),
            }
        })
    }

    pub(crate) async fn subscribe(&self, subject: &str, group: Option<&str>) -> Result<Subscription, BusError> {
        crate::subjects::validate_subscribe_subject(subject)?;
        let subscriber = match group {
            Some(group) => self.client.queue_subscribe(subject.to_owned(), group.to_owned()).await,
            None => self.client.subscribe(subject.to_owned()).await,
        }
        .map_err(|e| BusError::backend("subscribe", e))?;
        Ok(Subscription { inner: Box::pin(subscriber.map(from_nats)) })
    }

    pub(crate) async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        crate::subjects::validate_publish_subject(subject)?;
        let request = async_nats::Request::new().headers(headers.to_nats()).payload(payload).timeout(Some(timeout));
        self.client.send_request(subject.to_owned(), request).await.map(from_nats).map_err(|e| {
            use async_nats::RequestErrorKind;
            match e.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders { subject: subject.to_owned() },
                RequestErrorKind::TimedOut => BusError::Timeout { subject: subject.to_owned(), timeout },
                _ => BusError::backend("request", e),
            }
        })
    }

    pub(crate) async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        let config = stream::Config {
            name: spec.name.clone(),
            subjects: spec.subjects.clone(),
            retention: match spec.retention {
                Retention::Limits => stream::RetentionPolicy::Limits,
                Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
            },
            discard: match spec.retention {
                Retention::Limits => stream::DiscardPolicy::Old,
                Retention::WorkQueue => stream::DiscardPolicy::New,
            },
            max_age: spec.max_age,
            max_bytes: spec.max_bytes,
            duplicate_window: spec.duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        self.jetstream
            .create_or_update_stream(config)
            .await
            .map(drop)
            .map_err(|e| BusError::backend("ensure stream", e))
    }

    pub(crate) async fn delete_stream(&self, name: &str) -> Result<(), BusError> {
        self.jetstream.delete_stream(name).await.map(drop).map_err(|e| BusError::backend("delete stream", e))
    }

    async fn consumer(&self, spec: &ConsumerSpec) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let stream = self.jetstream.get_stream(&spec.stream).await.map_err(|e| BusError::backend("get stream", e))?;
        let (filter_subject, filter_subjects) = match spec.filter_subjects.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject,
            filter_subjects,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: i64::from(spec.max_deliver),
            max_ack_pending: spec.max_ack_pending as i64,
            deliver_policy: match spec.start_at {
                StartAt::All => consumer::DeliverPolicy::All,
                StartAt::New => consumer::DeliverPolicy::New,
            },
            ..Default::default()
        };
        match stream.get_consumer(&spec.durable).await {
            Ok(existing) => {
                // Keep the position; bring settings up to date.
                let _ = stream
                    .update_consumer(config)
                    .await
                    .map_err(|e| tracing::warn!(error = %e, durable = %spec.durable, "could not update consumer"));
                Ok(existing)
            }
            Err(_) => stream.create_consumer(config).await.map_err(|e| BusError::backend("create consumer", e)),
        }
    }

    pub(crate) async fn durable_subscribe(&self, spec: &ConsumerSpec) -> Result<DurableSubscription, BusError> {
        let consumer = self.consumer(spec).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(spec.max_ack_pending.clamp(1, 256))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| BusError::backend("consume", e))?;
        let deliveries = messages.map(|item| {
            let message = item.map_err(|e| BusError::backend("consume", e))?;
            let attempt = message.info().map(|i| i.delivered as u64).unwrap_or(1);
            let (message, acker) = message.split();
            Ok(Delivery { message: from_nats(message), attempt, acker: Acker::Nats(acker) })
        });
        Ok(DurableSubscription { inner: Box::pin(deliveries) })
    }

    pub(crate) async fn consumer_pending(&self, stream: &str, durable: &str) -> Result<u64, BusError> {
        let stream = self.jetstream.get_stream(stream).await.map_err(|e| BusError::backend("get stream", e))?;
        let info = stream.consumer_info(durable).await.map_err(|e| BusError::backend("consumer info", e))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub(crate) async fn ping(&self) -> Result<Duration, BusError> {
        let start = std::time::Instant::now();
        self.client.flush().await.map_err(|e| BusError::backend("ping", e))?;
        Ok(start.elapsed())
    }

    pub(crate) async fn drain(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(|e| BusError::backend("flush", e))?;
        self.client.drain().await.map_err(|e| BusError::backend("drain", e))
    }
}

fn from_nats(message: async_nats::Message) -> Message {
    Message {
        subject: message.subject.to_string(),
        headers: Headers::from_nats(message.headers.as_ref()),
        payload: message.payload,
        reply: message.reply.map(|r| r.to_string()),
    }
}
