use super::*;

fn join(name: &str) -> Change {
    Change::Join {
        name: name.into(),
        account: false,
    }
}

fn snap(version: u64, names: &[&str]) -> Snapshot {
    Snapshot {
        version,
        members: names.iter().map(|n| (n.to_string(), false)).collect(),
        topics: vec![("news".into(), names.len())],
    }
}

#[test]
fn changes_apply_in_version_order_and_old_ones_are_ignored() {
    let mut r = Remote::default();
    assert_eq!(r.change("a", 1, join("Ann")), vec![join("Ann")]);
    assert_eq!(r.get("ann"), Some("Ann"));
    // A snapshot as old as what is known changes nothing.
    assert!(r.snapshot("a", snap(1, &[])).is_empty());
    assert!(r.contains("ANN"));
    // A change already covered by a snapshot is not applied twice.
    assert!(r.snapshot("a", snap(3, &["Ann", "Bob"])) == vec![join("Bob")]);
    assert!(r.change("a", 2, join("Bob")).is_empty());
    let leave = Change::Leave { name: "Bob".into() };
    assert_eq!(r.change("a", 4, leave.clone()), vec![leave]);
    assert_eq!(r.members().count(), 1);
}

#[test]
fn a_lost_change_is_repaired_by_the_next_snapshot_of_the_same_version() {
    let mut r = Remote::default();
    r.change("a", 1, join("Ann"));
    // Change 2 (Bob joins) is lost; change 3 arrives.
    r.change("a", 3, join("Cy"));
    assert!(!r.contains("bob"));
    assert_eq!(
        r.snapshot("a", snap(3, &["Ann", "Bob", "Cy"])),
        vec![join("Bob")]
    );
    assert!(r.contains("bob"));
}

#[test]
fn a_snapshot_shows_leaves_joins_and_renames() {
    let mut r = Remote::default();
    r.snapshot("a", snap(1, &["ann", "bob"]));
    let shown = r.snapshot("a", snap(2, &["Ann", "cy"]));
    assert!(shown.contains(&Change::Leave { name: "bob".into() }));
    assert!(shown.contains(&join("cy")));
    assert!(shown.contains(&Change::Rename {
        old: "ann".into(),
        new: "Ann".into(),
        account: false
    }));
}

#[test]
fn a_gone_node_takes_its_members_and_topics_with_it() {
    let mut r = Remote::default();
    r.snapshot("a", snap(1, &["ann"]));
    r.snapshot("b", snap(1, &["bob", "cy"]));
    assert_eq!(r.topics().get("news"), Some(&("news", 3)));
    assert_eq!(r.gone("b").len(), 2);
    assert_eq!(r.topics().get("news"), Some(&("news", 1)));
    assert_eq!(r.nodes(), vec!["a".to_owned()]);
    assert!(r.gone("b").is_empty());
}
