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

#[test]
fn a_node_that_never_stops_changing_still_converges_after_a_lost_change() {
    let mut r = Remote::default();
    r.change("a", 1, join("ann"));
    // Change 2 (ann leaves) is lost; 3 and 4 arrive before the snapshot
    // written at 2 is read, and 5 right after it.
    r.change("a", 3, join("bob"));
    r.change("a", 4, join("cy"));
    assert!(r.contains("ann"), "the ghost, for now");
    let shown = r.snapshot("a", snap(2, &[]));
    assert_eq!(shown, vec![Change::Leave { name: "ann".into() }]);
    assert!(r.contains("bob") && r.contains("cy"), "replayed on top");
    // Complete now: an older list changes nothing, a newer change applies.
    assert!(r.snapshot("a", snap(3, &["bob"])).is_empty());
    r.change("a", 5, join("dee"));
    assert_eq!(r.members().count(), 3);
}
