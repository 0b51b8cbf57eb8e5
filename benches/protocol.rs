//! Micro-benchmarks of the protocol layer (criterion), in bytes per second:
//! frame header decode and encode, masking, a message through the session
//! (unmasking, plus the UTF-8 check for text: compare `session_text_message`
//! with `session_binary_message` for what the check costs, and
//! `session_text_in_segments` for the check run chunk by chunk as TCP
//! segments arrive), and the accept key.
//!
//!     cargo bench --bench protocol

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use switchboard::protocol::frame::{self, apply_mask, encode_masked, OpCode};
use switchboard::protocol::handshake::accept_key;
use switchboard::protocol::{Limits, Session};

const SIZES: [usize; 3] = [64, 4096, 65536];

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        let mut data = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut data), [0x37, 0xfa, 0x21, 0x3d], 0))
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_frame");
    for size in SIZES {
        let payload = vec![b'x'; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| frame::encode(OpCode::Text, black_box(&payload)))
        });
    }
    group.finish();
}

fn decode_header(c: &mut Criterion) {
    let wire = encode_masked(true, OpCode::Binary, &[0u8; 70000], [1, 2, 3, 4]);
    let mut group = c.benchmark_group("parse_header");
    group.throughput(Throughput::Bytes(14));
    group.bench_function("64-bit length, masked", |b| {
        b.iter(|| frame::parse_header(black_box(&wire)))
    });
    group.finish();
}

const LIMITS: Limits = Limits {
    max_frame: 1 << 20,
    max_message: 1 << 20,
};

/// Mixed ASCII and multi-byte UTF-8, `size` bytes or a little less.
fn mixed_text(size: usize) -> String {
    "κόσμε hello ".chars().cycle().take(size).collect()
}

/// A whole masked message, as a client sends it, read by a new session.
fn session_message(c: &mut Criterion, name: &str, opcode: OpCode) {
    let mut group = c.benchmark_group(name);
    for size in SIZES {
        let text = mixed_text(size);
        let wire = encode_masked(true, opcode, text.as_bytes(), [9, 8, 7, 6]);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                let mut s = Session::new(LIMITS);
                let step = s.read(black_box(&wire)).expect("valid");
                black_box(step.event)
            })
        });
    }
    group.finish();
}

fn session_text(c: &mut Criterion) {
    session_message(c, "session_text_message", OpCode::Text);
}

fn session_binary(c: &mut Criterion) {
    session_message(c, "session_binary_message", OpCode::Binary);
}

/// A 64 KiB text message arriving in 1460-byte reads (one TCP segment
/// each), so the UTF-8 check runs per chunk and characters straddle reads.
fn session_text_segments(c: &mut Criterion) {
    let text = mixed_text(65536);
    let wire = encode_masked(true, OpCode::Text, text.as_bytes(), [9, 8, 7, 6]);
    let mut group = c.benchmark_group("session_text_in_segments");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("65536 in 1460-byte reads", |b| {
        b.iter(|| {
            let mut s = Session::new(LIMITS);
            let (mut buf, mut event) = (Vec::new(), None);
            for segment in wire.chunks(1460) {
                buf.extend_from_slice(black_box(segment));
                loop {
                    let step = s.read(&buf).expect("valid");
                    buf.drain(..step.consumed);
                    if step.event.is_some() {
                        event = step.event;
                    }
                    if step.consumed == 0 || buf.is_empty() {
                        break;
                    }
                }
            }
            black_box(event.expect("the whole message"))
        })
    });
    group.finish();
}

fn handshake_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("accept_key");
    group.throughput(Throughput::Bytes(24));
    group.bench_function("rfc 1.3 key", |b| {
        b.iter(|| accept_key(black_box("dGhlIHNhbXBsZSBub25jZQ==")))
    });
    group.finish();
}

criterion_group!(
    benches,
    masking,
    encode,
    decode_header,
    session_text,
    session_binary,
    session_text_segments,
    handshake_key
);
criterion_main!(benches);
