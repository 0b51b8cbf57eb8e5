//! The chat's flags (part of the one table, see
//! [`flags`](super::flags::flags)): history, topics, text, recipients,
//! subscriptions, rate.

use super::flags::{count, size, Flag, Kind};

/// The chat's flags.
pub(super) const CHAT: &[Flag] = &[
    Flag {
        name: "history",
        kind: Kind::Count,
        default: "100",
        help: "chat messages kept per stream (broadcasts, each topic)",
        set: |c, v| {
            c.history = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "history-bytes",
        kind: Kind::Size,
        default: "512KiB",
        help: "bytes of history kept in memory per stream, as JSON (escapes included); the oldest go first",
        set: |c, v| {
            c.history_bytes = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "history-total-bytes",
        kind: Kind::Size,
        default: "16MiB",
        help: "bytes of history kept in memory for all streams together; the oldest message of any stream goes first (with a --db file, older messages are still read from it)",
        set: |c, v| {
            c.history_total_bytes = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-topics",
        kind: Kind::Count,
        default: "1024",
        help: "topics kept; the longest idle one without subscribers goes first",
        set: |c, v| {
            c.max_topics = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-subscriptions",
        kind: Kind::Count,
        default: "64",
        help: "topics one connection may be subscribed to, and four times as many for all the connections of one address (`too_many_topics` beyond): a few connections cannot take every topic slot",
        set: |c, v| {
            c.max_subscriptions = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-text",
        kind: Kind::Size,
        default: "4096",
        help: "longest chat `text` in bytes (`too_long` beyond)",
        set: |c, v| {
            c.max_text = size(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-recipients",
        kind: Kind::Count,
        default: "100",
        help: "the most names one `multicast` may list (more is `bad_request`): each name is checked under the chat's lock",
        set: |c, v| {
            c.max_recipients = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "rate",
        kind: Kind::Count,
        default: "20",
        help: "chat messages per second per connection (0: no limit)",
        set: |c, v| {
            c.rate = count(v)?;
            Ok(())
        },
    },
    Flag {
        name: "burst",
        kind: Kind::Count,
        default: "40",
        help: "chat messages a connection may send at once",
        set: |c, v| {
            c.burst = count(v)?;
            Ok(())
        },
    },
];
