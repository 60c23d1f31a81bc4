//! The contract as a frontend team meets it (`frontend/`): TypeScript types generated from
//! `schema.graphql` for the operations kept in `frontend/operations`, and from the served
//! OpenAPI document, compiled with `tsc --strict` together with code that uses them; and
//! Redocly's recommended lint of the document. Pinned npm packages are installed into the
//! build's temporary folder; the test is skipped only where Node.js is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::http::StatusCode;

use crate::common::TestApp;

const FRONTEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/frontend");
const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");

pub(crate) fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "node_modules" || name == "generated" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A fresh copy of `frontend/` (sources only) in `dir`, with its pinned packages installed
/// once per version of package.json.
pub(crate) fn workspace(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir.join("src"));
    let _ = std::fs::remove_dir_all(dir.join("operations"));
    let _ = std::fs::remove_dir_all(dir.join("generated"));
    copy_dir(Path::new(FRONTEND), dir);
    std::fs::create_dir_all(dir.join("generated")).unwrap();
    let manifest = std::fs::read(dir.join("package.json")).unwrap();
    let stamp = dir.join("node_modules/.installed-package.json");
    if std::fs::read(&stamp).ok().as_deref() != Some(manifest.as_slice()) {
        let status = Command::new("npm")
            .args(["install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "npm install in {} failed", dir.display());
        std::fs::write(&stamp, &manifest).unwrap();
    }
    dir.to_owned()
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).current_dir(dir).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_clients_compile_and_the_openapi_document_passes_redocly() {
    if !succeeds("node", &["--version"]) || !succeeds("npm", &["--version"]) {
        println!("SKIPPED frontend contract test: node and npm are not installed");
        return;
    }
    let t = TestApp::new().await;
    let served = t.get("/api/v1/openapi.json", None).await;
    assert_eq!(served.status, StatusCode::OK);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract");
    let dir = tokio::task::spawn_blocking(move || workspace(&dir)).await.unwrap();
    std::fs::write(dir.join("generated/openapi.json"), served.body.to_string()).unwrap();

    let dir2 = dir.clone();
    let (codegen, tsc, lint) = tokio::task::spawn_blocking(move || {
        let codegen = run(&dir2, "node", &["codegen.mjs", SCHEMA, "generated/openapi.json"]);
        let tsc = run(&dir2, "npx", &["--no-install", "tsc", "-p", "tsconfig.json"]);
        let lint = run(
            &dir2,
            "npx",
            &["--no-install", "redocly", "lint", "generated/openapi.json", "--extends=recommended", "--format=stylish"],
        );
        (codegen, tsc, lint)
    })
    .await
    .unwrap();
    assert!(codegen.status.success(), "codegen failed: {}", text(&codegen));
    assert!(tsc.status.success(), "tsc --strict failed on the generated clients: {}", text(&tsc));
    assert!(lint.status.success(), "redocly lint (recommended) failed: {}", text(&lint));
    let generated = std::fs::read_to_string(dir.join("generated/graphql.ts")).unwrap();
    assert!(generated.contains("totalCents: number"), "Money is a number in TypeScript");

    // The check has teeth: a schema where a money field became a string fails `tsc`, and one
    // where a field the operations use is gone fails the code generation.
    let doctored =
        std::fs::read_to_string(SCHEMA).unwrap().replacen("\ttotalCents: Money!", "\ttotalCents: String!", 1);
    let gone = std::fs::read_to_string(SCHEMA)
        .unwrap()
        .replace("\trefundPendingCents: Money!", "\trefundPendingMinor: Money!");
    std::fs::write(dir.join("generated/doctored.graphql"), doctored).unwrap();
    std::fs::write(dir.join("generated/gone.graphql"), gone).unwrap();
    let (drift_tsc, drift_codegen) = tokio::task::spawn_blocking(move || {
        let codegen = run(&dir, "node", &["codegen.mjs", "generated/doctored.graphql", "generated/openapi.json"]);
        assert!(codegen.status.success(), "{}", text(&codegen));
        let tsc = run(&dir, "npx", &["--no-install", "tsc", "-p", "tsconfig.json"]);
        let gone = run(&dir, "node", &["codegen.mjs", "generated/gone.graphql", "generated/openapi.json"]);
        (tsc, gone)
    })
    .await
    .unwrap();
    assert!(!drift_tsc.status.success(), "a money field typed String must not compile");
    assert!(text(&drift_tsc).contains("totalCents") || text(&drift_tsc).contains("TS2"), "{}", text(&drift_tsc));
    assert!(!drift_codegen.status.success(), "an operation using a removed field must fail");
    assert!(text(&drift_codegen).contains("refundPendingCents"), "{}", text(&drift_codegen));
}
