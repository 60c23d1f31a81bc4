/// `schema.graphql` is the exported SDL; regenerate with `cargo run -- schema > schema.graphql`.
#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let current = billing_api::graphql::sdl();
    assert!(committed == current, "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`");
}
