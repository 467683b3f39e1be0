//! Notification channels, shared by the server (it validates channels and
//! sends test messages) and the dispatchers of the alert role (they deliver
//! the outbox), so both send exactly the same requests.
//!
//! - [`settings`]: each channel kind's stored settings (secrets included;
//!   `Debug` hides them).
//! - [`payload`]: what an incident event looks like on the wire: the
//!   documented webhook payload (version 1) and Slack's `text` + `blocks`.
//! - [`kinds`]: the Discord, Teams, Telegram and PagerDuty bodies, and
//!   what their answers mean (Telegram's `ok: false`, `retry_after`s in
//!   bodies).
//! - [`signature`]: the `X-Monitor-Signature` HMAC-SHA256 header.
//! - [`retry`]: which answers are retried and when the next attempt is due
//!   (pure functions of the attempt, the answer and the time spent).
//! - [`message`]: the one message a channel gets for a batch of notices
//!   (one notice, or several grouped), by kind.
//! - [`send`]: the HTTP sender: the blocklist on every address, no proxy, no
//!   redirects, a timeout, and the delivery id header.
//! - [`email`]: what an email says (subject, plain text and HTML bodies,
//!   one or a batch of events) and its Message-ID.
//! - [`smtp`]: the SMTP sender: the blocklist on the resolved host, TLS
//!   always (implicit or a required STARTTLS), optional login, a timeout.

pub mod email;
pub mod kinds;
pub mod message;
pub mod payload;
pub mod retry;
pub mod send;
pub mod settings;
pub mod signature;
pub mod smtp;

/// Header naming the delivery, `<outbox dedup key>:<channel id>`: the same
/// on every attempt, so a receiver can drop a repeat.
pub const DELIVERY_HEADER: &str = "x-monitor-delivery";
/// Header carrying the signature when the channel has a signing secret.
pub const SIGNATURE_HEADER: &str = "x-monitor-signature";

/// The delivery id of an outbox row's dedup key sent to a channel.
pub fn delivery_id(dedup_key: &str, channel_id: uuid::Uuid) -> String {
    format!("{dedup_key}:{channel_id}")
}
