//! The benchmark must not rot: its quick mode (small data, about a second per measurement)
//! runs here against the binary this test run built, and must finish without errors.

use std::path::Path;
use std::process::Command;

#[test]
fn quick_benchmark_runs_clean() {
    let have = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !have("python3") || !have("node") || !have("npm") {
        println!("SKIPPED benchmark: python3, node and npm are needed");
        return;
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_billing-api"));
    let loadgen = binary.parent().unwrap().join("examples/loadgen");
    assert!(loadgen.is_file(), "cargo test builds the loadgen example: {}", loadgen.display());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-results");
    let output = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/run.py"))
        .args(["--quick", "--seconds", "1"])
        .arg("--binary")
        .arg(binary)
        .arg("--loadgen")
        .arg(&loadgen)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "benchmark failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(out.join("latest-quick.md")).unwrap();
    for row in [
        "| 1 order detail | GraphQL |",
        "| 1 order detail | PostGraphile |",
        "| 2 page of 50 | pgbench (our SQL) |",
        "| 4 callbacks | REST signed |",
        "## Live order updates (GraphQL subscriptions)",
        "| 3 page 40 | GraphQL cursor |",
        "| 6 payments page 40 | GraphQL cursor |",
        "| 6 payments page 40 | REST |",
        "## Plans of filtered payment pages",
    ] {
        assert!(report.contains(row), "missing {row} in:\n{report}");
    }
}
