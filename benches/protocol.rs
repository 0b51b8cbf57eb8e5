//! Micro-benchmarks of the protocol layer (criterion), in bytes per second:
//! frame header decode and encode, masking, a text message through the
//! session (unmasking + incremental UTF-8 check), and the accept key.
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

fn session_text(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_text_message");
    for size in SIZES {
        // Mixed ASCII and multi-byte UTF-8, masked as a client sends it.
        let text: String = "κόσμε hello ".chars().cycle().take(size).collect();
        let wire = encode_masked(true, OpCode::Text, text.as_bytes(), [9, 8, 7, 6]);
        let limits = Limits {
            max_frame: 1 << 20,
            max_message: 1 << 20,
        };
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                let mut s = Session::new(limits);
                let step = s.read(black_box(&wire)).expect("valid");
                black_box(step.event)
            })
        });
    }
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
    handshake_key
);
criterion_main!(benches);
