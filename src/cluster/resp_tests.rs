//! RESP2 against the examples of the protocol's description, split and
//! joined reads, and input that must be refused without allocating.

use super::*;

fn one(bytes: &[u8]) -> Reply {
    let (reply, used) = parse(bytes).unwrap().expect("complete");
    assert_eq!(used, bytes.len(), "all of {bytes:?} used");
    reply
}

#[test]
fn commands_are_arrays_of_bulk_strings() {
    assert_eq!(
        encode(&["SET", "k", "v1"]),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n".to_vec()
    );
    // Binary-safe: CRLF and NUL inside an argument.
    let odd: &[u8] = b"a\r\n\0b";
    assert_eq!(encode(&[odd]), b"*1\r\n$5\r\na\r\n\0b\r\n".to_vec());
}

#[test]
fn every_reply_type() {
    assert_eq!(one(b"+OK\r\n"), Reply::Status("OK".into()));
    assert_eq!(one(b"-ERR wrong\r\n"), Reply::Error("ERR wrong".into()));
    assert_eq!(one(b":-42\r\n"), Reply::Int(-42));
    assert_eq!(one(b"$2\r\nv1\r\n"), Reply::Bulk(Some(b"v1".to_vec())));
    assert_eq!(one(b"$0\r\n\r\n"), Reply::Bulk(Some(Vec::new())));
    assert_eq!(one(b"$-1\r\n"), Reply::Bulk(None));
    assert_eq!(one(b"*-1\r\n"), Reply::Array(None));
    assert_eq!(
        one(b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n+x\r\n"),
        Reply::Array(Some(vec![
            Reply::Bulk(Some(b"a".to_vec())),
            Reply::Int(1),
            Reply::Array(Some(vec![Reply::Status("x".into())])),
        ]))
    );
    assert_eq!(
        one(b"$5\r\na\r\n\0b\r\n"),
        Reply::Bulk(Some(b"a\r\n\0b".to_vec()))
    );
}

#[test]
fn a_reply_split_anywhere_waits_for_the_rest_and_two_come_out_one_by_one() {
    let whole = b"*2\r\n$5\r\nhello\r\n:7\r\n+OK\r\n";
    for cut in 0..whole.len() - 5 {
        assert_eq!(parse(&whole[..cut]).unwrap(), None, "cut at {cut}");
    }
    let (first, used) = parse(whole).unwrap().unwrap();
    assert_eq!(first.items().len(), 2);
    assert_eq!(
        parse(&whole[used..]).unwrap(),
        Some((Reply::Status("OK".into()), 5))
    );
}

#[test]
fn bad_input_is_refused_without_allocating_for_it() {
    for bad in [
        &b"$99999999999\r\n"[..],
        b"*99999999999\r\n",
        b"$-2\r\n",
        b"*-5\r\n",
        b"$abc\r\n",
        b":1x\r\n",
        b"?what\r\n",
        b"\r\n",
        b"$2\r\nabcd\r\n",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    // Deep nesting stops at MAX_DEPTH.
    let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
    assert!(parse(deep.as_bytes()).is_err());
    // A huge array header with few items is incomplete, not an allocation.
    assert_eq!(parse(b"*1000000\r\n:1\r\n").unwrap(), None);
    // A line that never ends is refused once it is clearly not a header.
    assert!(parse(&vec![b'+'; 70 * 1024]).is_err());
}

#[test]
fn replies_read_as_text_numbers_and_items() {
    assert_eq!(one(b"$2\r\n42\r\n").int(), Some(42));
    assert_eq!(one(b"+PONG\r\n").text(), Some("PONG"));
    assert_eq!(one(b"*-1\r\n").items().len(), 0);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives, parsing answers (a reply, "more", or an
        /// error) and never panics or over-reads.
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Some((_, used))) = parse(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }

        /// A command read back as a reply is the same arguments.
        #[test]
        fn encoded_commands_read_back(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let bytes = encode(&args);
            let (reply, used) = parse(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            let back: Vec<Vec<u8>> = reply.items().iter().map(|r| match r {
                Reply::Bulk(Some(b)) => b.clone(),
                other => panic!("{other:?}"),
            }).collect();
            prop_assert_eq!(back, args);
        }
    }
}
